'use strict';

// Issue 14: counters, diagnostics_channel events, graceful close.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const dc = require('node:diagnostics_channel');
const net = require('node:net');

const { socket, client, delay, CallosumClient } = require('./helpers.js');
const { counterNames } = require('../lib/counters.js');
const { names: channelNames } = require('../lib/diagnostics.js');

test('counters: a scripted sequence, every counter checked', async () => {
  const c = client({ MAX_SLOTS: 2, maxWaiting: 1 });
  const zero = Object.fromEntries(counterNames.map((n) => [n, 0]));
  assert.deepEqual(c.counters(), zero);

  const a = socket();
  const b = socket();
  c.newConnection(5, a); // kept
  c.newConnection(3, b); // kept
  c.newConnection(9, socket()); // refused: full, 9 >= 5
  c.newConnection('x', socket()); // refused: bad slot (and an error)
  const d = socket();
  d.destroy();
  c.newConnection(1, d); // refused: already destroyed
  const e = socket();
  c.newConnection(1, e); // kept, displacing 5 (idle: destroyed)
  const got = c.getConnection(); // lease (slot 1)
  assert.equal(got, e);
  c.returnConnection(got); // return
  c.returnConnection(got); // second return: an error, not counted
  const immediate = await c.acquire(); // immediate (a lease)
  const other = c.getConnection(); // lease
  const waiting = c.acquire({ timeout: 10_000 }); // waits
  await assert.rejects(c.acquire(), { code: 'ERR_CALLOSUM_QUEUE_FULL' }); // queue full
  c.returnConnection(immediate); // return, handed to the waiter (a lease)
  assert.equal(await waiting, immediate); // served after waiting
  await assert.rejects(c.acquire({ timeout: 1 }), { code: 'ERR_CALLOSUM_ACQUIRE_TIMEOUT' }); // timed out
  const ac = new AbortController();
  const aborted = c.acquire({ signal: ac.signal });
  ac.abort();
  await assert.rejects(aborted, { code: 'ABORT_ERR' }); // aborted
  other.emit('close', false); // died while leased
  c.returnConnection(other); // its one quiet return
  c.returnConnection(immediate); // return: idle
  immediate.emit('end'); // died while idle

  assert.deepEqual(c.counters(), {
    leases: 4,
    returns: 4, // the died socket's one return counts: it was accepted
    offersKept: 3,
    offersDisplacing: 1,
    offersRefused: 3,
    droppedIdle: 1,
    droppedFlooded: 0,
    droppedLeased: 1,
    acquiresImmediate: 1,
    acquiresAfterWait: 1,
    acquiresTimedOut: 1,
    acquiresAborted: 1,
    acquiresQueueFull: 1,
  });
  assert.deepEqual(c.errors.map((err) => err.code), ['ERR_CALLOSUM_INVALID_SLOT', 'ERR_CALLOSUM_NOT_LEASED']);
  // Monotonic: a copy each time, never reset by close().
  const before = c.counters();
  before.leases = -1;
  c.close();
  assert.equal(c.counters().leases, 4);
});

test('diagnostics_channel: kept, refused, dropped, acquire-timeout and closed messages; nothing per get/return', async () => {
  const seen = [];
  const subscribers = channelNames.map((name) => {
    const fn = (message) => seen.push([name, message]);
    dc.subscribe(name, fn);
    return [name, fn];
  });
  try {
    const c = client({ MAX_SLOTS: 1 });
    const a = socket();
    const b = socket();
    c.newConnection(4, a);
    c.newConnection(2, b); // kept, displacing 4
    c.newConnection(7, socket()); // refused (full)
    for (let i = 0; i < 10; i++) c.returnConnection(c.getConnection()); // publishes nothing
    const lent = c.getConnection();
    await assert.rejects(c.acquire({ timeout: 1 }), { code: 'ERR_CALLOSUM_ACQUIRE_TIMEOUT' });
    lent.emit('error', new Error('reset'));
    c.returnConnection(lent);
    c.close();
    const shapes = seen.filter(([, m]) => m.client === c).map(([name, m]) => {
      const { client: _c, socket: _s, error, ...rest } = m;
      return [name, error === undefined ? rest : { ...rest, error: error.message }];
    });
    assert.deepEqual(shapes, [
      ['callosum:pool:kept', { slot: 4, displacedSlot: null }],
      ['callosum:pool:kept', { slot: 2, displacedSlot: 4 }],
      ['callosum:pool:refused', { slot: 7, reason: 'full', highestSlot: 2 }],
      ['callosum:pool:acquire-timeout', { timeout: 1, waiting: 0 }],
      ['callosum:pool:dropped', { slot: 2, reason: 'error', leased: true, error: 'reset' }],
      ['callosum:pool:closed', { leased: 0 }],
    ]);
    assert.equal(seen.find(([n]) => n === 'callosum:pool:kept')[1].socket, a);
  } finally {
    for (const [name, fn] of subscribers) dc.unsubscribe(name, fn);
  }
});

test("diagnostics_channel: the rover's connection, handshake error and unreachable", async () => {
  const seen = [];
  const names = ['callosum:rover:connection', 'callosum:rover:handshake-error', 'callosum:rover:unreachable'];
  const fns = names.map((name) => {
    const fn = (m) => seen.push([name, m.serverId, m.slot ?? m.error?.code ?? null]);
    dc.subscribe(name, fn);
    return fn;
  });
  const good = net.createServer((s) => s.end('3\r\n'));
  const bad = net.createServer((s) => { s.on('error', () => {}); s.end('x\r\n'); });
  await Promise.all([good, bad].map((s) => new Promise((r) => s.listen(0, '127.0.0.1', r))));
  const dead = net.createServer();
  await new Promise((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = dead.address().port;
  await new Promise((r) => dead.close(r));
  const { Rover } = CallosumClient;
  const rover = new Rover({
    servers: {
      good: { host: '127.0.0.1', port: good.address().port },
      bad: { host: '127.0.0.1', port: bad.address().port },
      dead: { host: '127.0.0.1', port: deadPort },
    },
  });
  rover.on('error', () => {});
  rover.on('unreachable', () => {});
  rover.on('connection', (slot, s) => s.destroy());
  try {
    for (const [r, id] of [[0.1, 'good'], [0.5, 'bad'], [0.9, 'dead']]) {
      rover._random = () => r;
      const before = seen.length;
      assert.equal(rover.connect(), id);
      const end = Date.now() + 3000;
      while (seen.length === before && Date.now() < end) await delay(5);
    }
    assert.deepEqual(seen, [
      ['callosum:rover:connection', 'good', 3],
      ['callosum:rover:handshake-error', 'bad', 'ERR_CALLOSUM_BAD_SLOT_LINE'],
      ['callosum:rover:unreachable', 'dead', null],
    ]);
  } finally {
    rover.stop();
    names.forEach((name, i) => dc.unsubscribe(name, fns[i]));
    good.close();
    bad.close();
  }
});

test('close() returns a promise that resolves once every lent socket is back; calling close() the old way still works', async () => {
  const c = client({ MAX_SLOTS: 3 });
  const idle = socket();
  const lent = socket();
  c.newConnection(0, lent);
  c.newConnection(1, idle);
  assert.equal(c.getConnection(), lent);
  const closing = c.close();
  assert.ok(closing instanceof Promise);
  assert.equal(c.close(), closing, 'the same promise again');
  assert.equal(idle.destroyed, true, 'idle sockets are destroyed at once, as before');
  assert.equal(lent.destroyed, false);
  let settled = false;
  closing.then(() => { settled = true; });
  await delay(20);
  assert.equal(settled, false, 'resolved while a socket was still lent');
  c.returnConnection(lent);
  assert.equal(lent.destroyed, true);
  await closing;
  assert.deepEqual(c.errors, []);
});

test('close({ timeout }): rejects ERR_CALLOSUM_CLOSE_TIMEOUT at the deadline and destroys what is still out; its late return is quiet', async () => {
  const c = client({ MAX_SLOTS: 2 });
  const s = socket();
  c.newConnection(0, s);
  const lent = c.getConnection();
  const t0 = Date.now();
  await assert.rejects(c.close({ timeout: 50 }), (err) => {
    assert.equal(err.code, 'ERR_CALLOSUM_CLOSE_TIMEOUT');
    assert.equal(err.leased, 1);
    return true;
  });
  assert.ok(Date.now() - t0 >= 45);
  assert.equal(lent.destroyed, true);
  c.returnConnection(lent);
  assert.deepEqual(c.errors, []);
});

test('close() stops the rovers and rejects the waiters; await client[Symbol.asyncDispose]() closes', async () => {
  const c = client({ MAX_SLOTS: 1 });
  const rover = c.rove({ a: { host: '127.0.0.1', port: 1 } }, { ROVING_INTERVAL: 60000 });
  c.on('unreachable', () => {});
  const waiter = assert.rejects(c.acquire(), { code: 'ERR_CALLOSUM_CLOSED' });
  const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose');
  await c[asyncDispose]();
  await waiter;
  assert.equal(rover.running, false);
  assert.equal(c.closed, true);
  // A bad option is reported, and the pool closes anyway.
  const d = client();
  await d.close({ timeout: -1 });
  assert.equal(d.errors[0].code, 'ERR_OUT_OF_RANGE');
  assert.equal(d.closed, true);
});

test('examples/prometheus-metrics.js: counts the channel events and the counters into Prometheus text', () => {
  const { spawnSync } = require('node:child_process');
  const path = require('node:path');
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'examples', 'prometheus-metrics.js')], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  for (const line of lines) assert.match(line, /^callosum_[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? \d+$/);
  const value = (key) => Number(lines.find((l) => l.startsWith(key))?.split(' ')[1]);
  assert.ok(value('callosum_kept_total{displacing="false"}') >= 1);
  assert.ok(value('callosum_rover_unreachable_total{server="gone"}') >= 1);
  assert.equal(value('callosum_pool_leases_total{pool="api"}'), value('callosum_pool_returns_total{pool="api"}'));
});
