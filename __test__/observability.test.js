'use strict';

// What a pool shows of itself: stats() (SPEC E2), counters() and the
// diagnostics_channel events (issue 14), NODE_DEBUG=callosum (SPEC E5), and the
// Prometheus example built on them.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const dc = require('node:diagnostics_channel');
const path = require('node:path');

const { socket, client, server, deadPort, delay, CallosumClient } = require('./helpers.js');

const root = path.join(__dirname, '..');

// The counters counters() reports, all of them (README's list).
const COUNTER_NAMES = [
  'leases',
  'returns',
  'offersKept',
  'offersDisplacing',
  'offersRefused',
  'droppedIdle',
  'droppedFlooded',
  'droppedLeased',
  'acquiresImmediate',
  'acquiresAfterWait',
  'acquiresTimedOut',
  'acquiresAborted',
  'acquiresQueueFull',
];

// The pool's diagnostics channels (README's list; the rover's are below).
const POOL_CHANNELS = [
  'callosum:pool:kept',
  'callosum:pool:refused',
  'callosum:pool:dropped',
  'callosum:pool:acquire-timeout',
  'callosum:pool:closed',
];

test('E2: stats() reports idle, leased, displaced, slotCount, lowest and highest slot', () => {
  const c = client({ MAX_SLOTS: 3 });
  assert.deepEqual(c.stats(), {
    maxSlots: 3,
    slotCount: 0,
    idle: 0,
    leased: 0,
    displaced: 0,
    lowestSlot: null,
    highestSlot: null,
    waiting: 0,
    heldBytes: 0,
    maxHeldBytes: 65536,
    closed: false,
  });
  c.newConnection(4, socket());
  c.newConnection(8, socket());
  c.newConnection(6, socket());
  c.getConnection(); // 4
  c.getConnection(); // 6
  c.getConnection(); // 8
  c.newConnection(2, socket()); // displaces leased 8
  c.returnConnection(c.getConnection()); // lends 2, returns it
  assert.deepEqual(c.stats(), {
    maxSlots: 3,
    slotCount: 3,
    idle: 1,
    leased: 2,
    displaced: 1,
    lowestSlot: 2,
    highestSlot: 6,
    waiting: 0,
    heldBytes: 0,
    maxHeldBytes: 65536,
    closed: false,
  });
  assert.equal(c.slotCount, 3);
});

test('E5: NODE_DEBUG=callosum logs kept, displaced, refused and dropped decisions', () => {
  const script = `
    const C = require(${JSON.stringify(root)});
    const net = require('node:net');
    const c = new C({ MAX_SLOTS: 1 });
    const a = new net.Socket();
    c.newConnection(5, a);
    c.newConnection(2, new net.Socket());
    c.newConnection(9, new net.Socket());
    c.getConnection().emit('close');
  `;
  const withDebug = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, NODE_DEBUG: 'callosum' },
  });
  const log = withDebug.stderr;
  assert.match(log, /CALLOSUM \d+: kept slot 5/);
  assert.match(log, /displaced idle slot 5: destroyed/);
  assert.match(log, /refused slot 9: pool full, highest kept slot 2/);
  assert.match(log, /dropped slot 2 \(socket ended\)/);
  const quiet = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, NODE_DEBUG: '' },
  });
  assert.equal(quiet.stderr, '', 'silent when NODE_DEBUG does not name callosum');
});

test('counters: a scripted sequence, every counter checked', async () => {
  const c = client({ MAX_SLOTS: 2, maxWaiting: 1 });
  const zero = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0]));
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
  assert.deepEqual(
    c.errors.map((err) => err.code),
    ['ERR_CALLOSUM_INVALID_SLOT', 'ERR_CALLOSUM_NOT_LEASED'],
  );
  // Monotonic: a copy each time, never reset by close().
  const before = c.counters();
  before.leases = -1;
  c.close();
  assert.equal(c.counters().leases, 4);
});

test('diagnostics_channel: kept, refused, dropped, acquire-timeout and closed messages; nothing per get/return', async () => {
  const seen = [];
  const subscribers = POOL_CHANNELS.map((name) => {
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
    const shapes = seen
      .filter(([, m]) => m.client === c)
      .map(([name, m]) => {
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
  const good = await server((s) => s.end('3\r\n'));
  const bad = await server((s) => s.end('x\r\n'));
  const dead = await deadPort();
  let pick = 0;
  const { Rover } = CallosumClient;
  const rover = new Rover({
    servers: { good: good.address, bad: bad.address, dead: { host: '127.0.0.1', port: dead } },
    random: () => pick, // ids in order: good [0, 1/3), bad, dead
  });
  rover.on('error', () => {});
  rover.on('unreachable', () => {});
  rover.on('connection', (_slot, s) => s.destroy());
  try {
    for (const [r, id] of [
      [0.1, 'good'],
      [0.5, 'bad'],
      [0.9, 'dead'],
    ]) {
      pick = r;
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
    for (const [i, name] of names.entries()) dc.unsubscribe(name, fns[i]);
    await good.close();
    await bad.close();
  }
});

test('examples/prometheus-metrics.js: counts the channel events and the counters into Prometheus text', () => {
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'examples', 'prometheus-metrics.js')], {
    encoding: 'utf8',
    timeout: 20000,
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  for (const line of lines) assert.match(line, /^callosum_[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? \d+$/);
  const value = (key) => Number(lines.find((l) => l.startsWith(key))?.split(' ')[1]);
  assert.ok(value('callosum_kept_total{displacing="false"}') >= 1);
  assert.ok(value('callosum_rover_unreachable_total{server="gone"}') >= 1);
  assert.equal(value('callosum_pool_leases_total{pool="api"}'), value('callosum_pool_returns_total{pool="api"}'));
});
