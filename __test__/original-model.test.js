'use strict';

// The benchmark's model of the original callosum-client-tcp 0.1.5
// (__test__/fixtures/original-0.1.5-model.js) checked against the original's documented behaviour
// (SPEC C1-C7) and against the defects it must keep (D1-D7), so that its
// figures can be trusted as the original's.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { EventEmitter, once } = require('node:events');

const Original = require('./fixtures/original-0.1.5-model.js');
const { FakeSocket, makeSockets } = require('./fixtures/fake-socket.js');

function fill(pool, slots) {
  const sockets = makeSockets(slots.length);
  for (const [i, slot] of slots.entries()) pool.newConnection(slot, sockets[i]);
  return sockets;
}

test('C1/C2: constructor, MAX_SLOTS default, EventEmitter', () => {
  assert.equal(new Original().MAX_SLOTS, 100);
  assert.equal(new Original({}).MAX_SLOTS, 100);
  assert.equal(new Original({ MAX_SLOTS: 0 }).MAX_SLOTS, 100);
  assert.equal(new Original({ MAX_SLOTS: 7 }).MAX_SLOTS, 7);
  assert.ok(new Original() instanceof EventEmitter);
  assert.equal(new Original().slotCount, 0);
});

test('C3: getConnection lends the very socket offered, lowest slot first, marks it leased', () => {
  const pool = new Original({ MAX_SLOTS: 10 });
  const slots = [5, 3, 9, 0, 7, 1];
  const sockets = fill(pool, slots);
  const lent = [];
  for (let s; (s = pool.getConnection()); ) lent.push(s);
  assert.deepEqual(
    lent.map((s) => s._slot),
    [0, 1, 3, 5, 7, 9],
  );
  for (const s of lent) {
    assert.ok(sockets.includes(s));
    assert.equal(s._leased, true);
  }
  assert.equal(pool.getConnection(), undefined);
  assert.equal(new Original().getConnection(), undefined);
});

test('C3: a dead idle socket is never lent', () => {
  const pool = new Original({ MAX_SLOTS: 10 });
  const [a, b] = fill(pool, [0, 1]);
  a.emit('close');
  assert.equal(pool.getConnection(), b);
  assert.equal(pool.getConnection(), undefined);
});

test('C4: below MAX_SLOTS every offer is kept', () => {
  const pool = new Original({ MAX_SLOTS: 3 });
  const sockets = fill(pool, [10, 20, 30]);
  assert.equal(pool.slotCount, 3);
  assert.ok(sockets.every((s) => !s.destroyed && s._slot !== undefined));
});

test('C4: full pool refuses a slot higher than or equal to the highest kept', () => {
  const pool = new Original({ MAX_SLOTS: 3 });
  fill(pool, [10, 20, 30]);
  const higher = new FakeSocket('higher');
  pool.newConnection(31, higher);
  assert.equal(higher.destroyed, true);
  const equal = new FakeSocket('equal');
  pool.newConnection(30, equal);
  assert.equal(equal.destroyed, true);
  assert.equal(pool.slotCount, 3);
  const lent = [pool.getConnection(), pool.getConnection(), pool.getConnection()];
  assert.deepEqual(
    lent.map((s) => s._slot),
    [10, 20, 30],
  );
  assert.equal(pool.getConnection(), undefined);
});

test('C4: full pool displaces the highest idle socket at once for a lower slot', () => {
  const pool = new Original({ MAX_SLOTS: 3 });
  const [s10, s20, s30] = fill(pool, [10, 20, 30]);
  const low = new FakeSocket('low');
  pool.newConnection(5, low);
  assert.equal(low.destroyed, false);
  assert.equal(s30.destroyed, true);
  assert.equal(s30.listenerCount('close'), 0);
  assert.equal(pool.slotCount, 3);
  const lent = [pool.getConnection(), pool.getConnection(), pool.getConnection()];
  assert.deepEqual(lent, [low, s10, s20]);
  assert.equal(pool.getConnection(), undefined);
});

test('C4/C5: a displaced leased socket is destroyed when returned, never lent again', () => {
  const pool = new Original({ MAX_SLOTS: 2 });
  const [s1, s2] = fill(pool, [1, 2]);
  assert.equal(pool.getConnection(), s1);
  assert.equal(pool.getConnection(), s2);
  const low = new FakeSocket('low');
  pool.newConnection(0, low); // displaces s2 (highest, leased)
  assert.equal(s2.destroyed, false, 'leased: not destroyed yet');
  assert.equal(pool.slotCount, 2);
  pool.returnConnection(s2);
  assert.equal(s2.destroyed, true);
  pool.returnConnection(s1);
  assert.equal(pool.getConnection(), low);
  assert.equal(pool.getConnection(), s1);
  assert.equal(pool.getConnection(), undefined);
});

test('C5: returnConnection makes a leased socket idle again', () => {
  const pool = new Original({ MAX_SLOTS: 5 });
  const [a, b] = fill(pool, [0, 1]);
  assert.equal(pool.getConnection(), a);
  assert.equal(pool.getConnection(), b);
  pool.returnConnection(b);
  assert.equal(b._leased, false);
  assert.equal(pool.getConnection(), b);
  pool.returnConnection(a);
  pool.returnConnection(b);
  assert.equal(pool.getConnection(), a);
  assert.equal(pool.slotCount, 2);
});

test('C5/C6: a socket that died while leased is dropped on return', () => {
  const pool = new Original({ MAX_SLOTS: 5 });
  const [a, b] = fill(pool, [0, 1]);
  assert.equal(pool.getConnection(), a);
  a.emit('end');
  assert.equal(pool.slotCount, 1);
  pool.returnConnection(a);
  assert.equal(pool.getConnection(), b);
  assert.equal(pool.getConnection(), undefined);
  assert.equal(pool.slotCount, 1);
});

test('C6: end, error or close drops a kept socket and frees its slot, once', () => {
  for (const event of ['end', 'error', 'close']) {
    const pool = new Original({ MAX_SLOTS: 2 });
    const [a, b] = fill(pool, [0, 1]);
    if (event === 'error')
      a.emit('error', new Error('boom')); // must not throw
    else a.emit(event);
    a.emit('close');
    a.emit('end');
    assert.equal(pool.slotCount, 1, event);
    assert.equal(a.listenerCount('error'), 0, event);
    // the freed slot takes a new socket without comparison
    const c = new FakeSocket('c');
    pool.newConnection(99, c);
    assert.equal(c.destroyed, false, event);
    assert.equal(pool.slotCount, 2, event);
    assert.equal(pool.getConnection(), b, event);
    assert.equal(pool.getConnection(), c, event);
  }
});

test('C6: an error on a pooled real socket does not crash, and its end frees the slot', async () => {
  const server = net.createServer((conn) => {
    conn.on('error', () => {}); // the client may reset it
    conn.end('0\r\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const pool = new Original({ MAX_SLOTS: 2 });
    const socket = net.connect(server.address().port, '127.0.0.1');
    await once(socket, 'connect');
    pool.newConnection(0, socket);
    assert.equal(pool.slotCount, 1);
    socket.emit('error', new Error('synthetic')); // handled by the watchdog
    assert.equal(pool.slotCount, 0);
    assert.equal(pool.getConnection(), undefined);
    socket.destroy();
    const socket2 = net.connect(server.address().port, '127.0.0.1');
    await once(socket2, 'connect');
    pool.newConnection(0, socket2);
    socket2.resume();
    await once(socket2, 'close');
    assert.equal(pool.slotCount, 0);
    assert.equal(pool.getConnection(), undefined);
  } finally {
    server.close();
  }
});

test('C7: slotCount counts live kept sockets, idle or leased', () => {
  const pool = new Original({ MAX_SLOTS: 4 });
  const sockets = fill(pool, [3, 1, 2, 0]);
  assert.equal(pool.slotCount, 4);
  pool.getConnection();
  pool.getConnection();
  assert.equal(pool.slotCount, 4);
  sockets[0].emit('close');
  assert.equal(pool.slotCount, 3);
  pool.newConnection(9, new FakeSocket('x'));
  assert.equal(pool.slotCount, 4);
});

test('the lend order matches a sorted reference on a random run', () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const pool = new Original({ MAX_SLOTS: 200 });
  const slots = Array.from({ length: 200 }, () => Math.floor(rand() * 1000));
  fill(pool, slots);
  const held = [];
  for (let step = 0; step < 5000; step++) {
    if (held.length > 0 && (rand() < 0.5 || held.length === 200)) {
      pool.returnConnection(held.splice(Math.floor(rand() * held.length), 1)[0]);
    } else {
      const s = pool.getConnection();
      const idleSlots = slots.length - held.length;
      assert.ok(s, `a socket while ${idleSlots} are idle`);
      const lowestIdle = Math.min(...slots.filter((_, i) => !held.some((h) => h.id === i)));
      assert.equal(s._slot, lowestIdle);
      held.push(s);
    }
  }
});

// The defects the model must keep, or it would not cost what the original costs.

test('D1: every get/return cycle leaves one stale node in the max heap', () => {
  const pool = new Original({ MAX_SLOTS: 100 });
  fill(
    pool,
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.equal(pool.maxHeap.size, 100);
  for (let i = 0; i < 1000; i++) pool.returnConnection(pool.getConnection());
  assert.equal(pool.minHeap.size, 100);
  assert.equal(pool.maxHeap.size, 1100);
});

test('D2: a displaced leased socket that closes frees a slot it no longer has', () => {
  const pool = new Original({ MAX_SLOTS: 2 });
  const [, s2] = fill(pool, [1, 2]);
  pool.getConnection();
  pool.getConnection();
  pool.newConnection(0, new FakeSocket('low')); // displaces leased s2
  s2.emit('close');
  assert.equal(pool.slotCount, 1);
  pool.newConnection(50, new FakeSocket('extra')); // kept: 3 live sockets, MAX_SLOTS 2
  assert.equal(pool.slotCount, 2);
});

test('D3: a socket returned twice is lent twice', () => {
  const pool = new Original({ MAX_SLOTS: 2 });
  const [a] = fill(pool, [0, 1]);
  pool.getConnection();
  pool.returnConnection(a);
  pool.returnConnection(a);
  assert.equal(pool.getConnection(), a);
  assert.equal(pool.getConnection(), a);
});

test('D4: returning a foreign socket adopts it without a slot', () => {
  const pool = new Original({ MAX_SLOTS: 2 });
  const foreign = new FakeSocket('foreign');
  pool.returnConnection(foreign);
  assert.equal(foreign._slot, undefined);
  assert.equal(pool.minHeap.size, 1);
  assert.equal(foreign.listenerCount('close'), 1);
});

test('D5: the same socket offered twice is counted twice', () => {
  const pool = new Original({ MAX_SLOTS: 5 });
  const a = new FakeSocket('a');
  pool.newConnection(1, a);
  pool.newConnection(1, a);
  assert.equal(pool.slotCount, 2);
});

test('D6: a socket destroyed before its close event can be lent', () => {
  const pool = new Original({ MAX_SLOTS: 5 });
  const [a] = fill(pool, [0]);
  a.destroy();
  assert.equal(pool.getConnection(), a);
});

test('D7: a full pool with no live socket in its max heap leaves the offer open', () => {
  const pool = new Original({ MAX_SLOTS: 1 });
  const a = new FakeSocket('a');
  pool.newConnection(0, a);
  a.emit('close'); // dropped: slotCount 0
  pool.newConnection(0, a); // the dead socket offered again is counted (D5): full
  assert.equal(pool.slotCount, 1);
  const orphan = new FakeSocket('orphan');
  pool.newConnection(0, orphan);
  assert.equal(orphan.destroyed, false, 'neither destroyed');
  assert.equal(orphan._slot, undefined, 'nor kept');
  assert.equal(pool.getConnection(), undefined);
});

// The package's own contract tests (SPEC C-items, in the feature files
// below, each with its id at the start of its title) run against the model,
// with `require('..')` redirected to it and only the C tests selected by name.
// Every C2-C7 test must pass, except those that check what the original 0.1.5
// does differently on purpose (its real behaviour, which the model keeps).
const CONTRACT_FILES = ['lend-return.test.js', 'offers.test.js', 'dead-sockets.test.js'];
const ORIGINAL_DIFFERS = [
  // the original's watchdog removes itself after the first event, so a second
  // 'error' on a dropped socket with no other listener is thrown (SPEC C6
  // "once"; the native pool keeps a listener)
  /^C6: a kept socket that emits '(end|error|close)' is dropped/,
  // ends with client.close() (E1), which the original does not have (D9)
  /^C6: over loopback/,
  // C3/C5 on the handle table: the original's second return of a dead socket
  // is not refused (D3, D4)
  /^C3\/C5: a freed handle reused/,
];

test('the package contract tests C2-C7 pass against the model', { timeout: 60_000 }, () => {
  const { runOnModel } = require('./helpers.js');
  const results = [];
  for (const file of CONTRACT_FILES) {
    const out = runOnModel(file, '^C\\d');
    const found = [...out.matchAll(/^(not ok|ok) \d+ - (.*)$/gm)].map((m) => ({
      ok: m[1] === 'ok',
      name: m[2].trim(),
    }));
    assert.ok(
      found.some((r) => /^C\d/.test(r.name)),
      `no C test ran in ${file}\n${out}`,
    );
    results.push(...found);
  }
  const relevant = results.filter((r) => /^C[2-7]\b/.test(r.name));
  assert.ok(relevant.length >= 8, `C2-C7 tests found: ${relevant.length}`);
  const unexpected = relevant.filter((r) => !r.ok && !ORIGINAL_DIFFERS.some((re) => re.test(r.name)));
  assert.deepEqual(
    unexpected.map((r) => r.name),
    [],
    'contract tests failed by the model',
  );
  const passed = relevant.filter((r) => r.ok).length;
  assert.ok(passed >= relevant.length - 5, `${passed} of ${relevant.length} passed`);
});
