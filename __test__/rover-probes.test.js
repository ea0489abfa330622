'use strict';

// The rover's `probes: N` (issue 20): each tick connects to N distinct random
// servers (N capped at the number of servers); default 1, the original's
// cadence. The rover offers every connection it makes; the pool keeps what it
// would keep and closes the rest. Real sockets on 127.0.0.1.

const { test } = require('node:test');
const assert = require('node:assert/strict');

const CallosumClient = require('..');
const { Rover } = CallosumClient;
const { CallosumServer } = require('./fixtures/callosum-server.js');
const { waitFor, delay, deadPort, rng } = require('./helpers.js');

const HOST = '127.0.0.1';

/** `count` Callosum servers on loopback, as `{ servers, list, close() }`. */
async function fleet(count) {
  const list = [];
  for (let i = 0; i < count; i++) {
    const s = new CallosumServer();
    await s.listen();
    list.push(s);
  }
  const servers = Object.fromEntries(list.map((s, i) => [`s${i}`, s.address]));
  return { list, servers, close: () => Promise.all(list.map((s) => s.close())) };
}

/** A seeded source of numbers in [0, 1). */
function seeded(seed) {
  const rand = rng(seed);
  return () => rand(1_000_000) / 1_000_000;
}

/**
 * Runs `ticks` ticks by hand, each once the previous one's connections have
 * all arrived; returns, per tick, which servers (indexes) accepted a connection.
 */
async function tickByTick(rover, list, ticks, perTick) {
  const got = [];
  rover.on('connection', (_slot, socket) => {
    got.push(socket.remotePort);
    socket.destroy();
  });
  const rows = [];
  for (let t = 0; t < ticks; t++) {
    const before = list.map((s) => s.accepted);
    const seen = got.length;
    const first = rover.connect();
    await waitFor(() => got.length >= seen + perTick, { timeout: 3000, what: `${perTick} connections in tick ${t}` });
    await delay(20); // time for an extra connection to show up, if there were one
    const hit = list.flatMap((s, i) => Array(s.accepted - before[i]).fill(i));
    rows.push(hit);
    assert.equal(got.length, seen + perTick, `tick ${t}: connections`);
    assert.ok(
      hit.map((i) => `s${i}`).includes(first),
      `tick ${t}: connect() returned ${first}, the servers hit were ${hit}`,
    );
  }
  return rows;
}

test('probes: a positive safe integer, default 1; bad values throw coded errors', () => {
  assert.equal(new Rover().probes, 1);
  assert.equal(new Rover({ probes: undefined }).probes, 1);
  assert.equal(new Rover({ probes: 3 }).probes, 3);
  assert.equal(Rover.DEFAULTS.probes, 1);
  for (const bad of ['2', null, true, {}, 2n]) {
    assert.throws(() => new Rover({ probes: bad }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }, String(bad));
  }
  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => new Rover({ probes: bad }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, String(bad));
  }
  assert.throws(() => new Rover({ probes: 0 }), {
    message: 'options.probes must be a positive safe integer, received 0',
  });
});

test('probes 2 with 3 servers: each tick makes 2 attempts, to 2 distinct servers', async () => {
  const f = await fleet(3);
  const rover = new Rover({ probes: 2, random: seeded(11), servers: f.servers });
  rover.on('error', (e) => assert.fail(e));
  try {
    const rows = await tickByTick(rover, f.list, 12, 2);
    for (const [t, hit] of rows.entries()) {
      assert.equal(hit.length, 2, `tick ${t}: ${hit}`);
      assert.notEqual(hit[0], hit[1], `tick ${t}: the same server twice`);
    }
    // Every pair shows up over 12 seeded ticks: the draws are not stuck on one pair.
    const pairs = new Set(rows.map((hit) => [...hit].sort().join()));
    assert.deepEqual([...pairs].sort(), ['0,1', '0,2', '1,2']);
  } finally {
    rover.stop();
    await f.close();
  }
});

test('default probes 1: each tick makes 1 attempt, as the original', async () => {
  const f = await fleet(3);
  const rover = new Rover({ random: seeded(5), servers: f.servers });
  rover.on('error', (e) => assert.fail(e));
  try {
    const rows = await tickByTick(rover, f.list, 8, 1);
    for (const [t, hit] of rows.entries()) assert.equal(hit.length, 1, `tick ${t}: ${hit}`);
  } finally {
    rover.stop();
    await f.close();
  }
});

test('probes above the number of servers is capped: every server once per tick', async () => {
  const f = await fleet(3);
  const rover = new Rover({ probes: 5, servers: f.servers });
  rover.on('error', (e) => assert.fail(e));
  try {
    const rows = await tickByTick(rover, f.list, 3, 3);
    for (const hit of rows) assert.deepEqual([...hit].sort(), [0, 1, 2]);
  } finally {
    rover.stop();
    await f.close();
  }
});

test('probes with back-off: the draws are among the servers not backing off', async () => {
  const f = await fleet(1);
  const dead = await deadPort();
  const rover = new Rover({
    probes: 2,
    backOffUnreachable: true,
    now: () => 0, // the clock stands still: a dead server stays skipped
    servers: { live: f.list[0].address, deadA: { host: HOST, port: dead }, deadB: { host: HOST, port: dead } },
  });
  const events = [];
  rover.on('unreachable', (id) => events.push(id));
  rover.on('connection', (_slot, socket) => {
    events.push('connection');
    socket.destroy();
  });
  rover.on('error', (e) => assert.fail(e));
  try {
    for (let t = 0; t < 6; t++) {
      rover.connect();
      await waitFor(() => rover.pending === 0, { timeout: 3000, what: 'the tick to settle' });
    }
    // Two dead servers: each unreachable once, then skipped; every later tick has one eligible server.
    assert.deepEqual(events.filter((e) => e !== 'connection').sort(), ['deadA', 'deadB']);
    assert.ok(events.filter((e) => e === 'connection').length >= 4, events.join());
    assert.equal(f.list[0].accepted, events.filter((e) => e === 'connection').length);
  } finally {
    rover.stop();
    await f.close();
  }
});

test('probes 3 offered to a pool of MAX_SLOTS 1: the pool keeps one and closes the rest', async () => {
  const f = await fleet(3);
  const client = new CallosumClient({ MAX_SLOTS: 1 });
  const errors = [];
  client.on('error', (e) => errors.push(e));
  const rover = new Rover({ probes: 3, servers: f.servers });
  rover.on('connection', (slot, socket) => client.newConnection(slot, socket));
  rover.on('error', (e) => errors.push(e));
  try {
    rover.connect();
    await waitFor(() => f.list.every((s) => s.accepted === 1), { timeout: 3000, what: 'a connection to each server' });
    // Each server gave slot 0; the pool keeps the first offer and refuses two.
    await waitFor(() => client.counters().offersRefused === 2, { timeout: 3000, what: 'two refusals' });
    assert.equal(client.slotCount, 1);
    await waitFor(() => f.list.reduce((n, s) => n + s.connections, 0) === 1, {
      timeout: 3000,
      what: 'the refused sockets closed',
    });
    assert.deepEqual(errors, []);
  } finally {
    rover.stop();
    client.close();
    await f.close();
  }
});
