'use strict';

// Lending and returning: the constructor, getConnection (lowest idle slot
// first), returnConnection, slotCount, the marks on a socket, handles freed
// and reused, and the heap kept flat over millions of cycles. SPEC C1-C3, C5,
// C7, C8, D1, D3, D4.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const v8 = require('node:v8');
const vm = require('node:vm');
const { socket, client, CallosumClient } = require('./helpers.js');
const { FakeSocket } = require('./fixtures/fake-socket.js');

// npm test passes --expose-gc; this also works when the file runs alone.
v8.setFlagsFromString('--expose-gc');
const gc = global.gc ?? (typeof Bun === 'object' ? () => Bun.gc(true) : vm.runInNewContext('gc'));

test('C1: require() is the constructor; MAX_SLOTS defaults to 100 and reads back', () => {
  assert.equal(typeof CallosumClient, 'function');
  assert.equal(new CallosumClient().MAX_SLOTS, 100);
  assert.equal(new CallosumClient({}).MAX_SLOTS, 100);
  assert.equal(new CallosumClient({ MAX_SLOTS: 0 }).MAX_SLOTS, 100, 'falsy means 100');
  assert.equal(new CallosumClient({ MAX_SLOTS: 7 }).MAX_SLOTS, 7);
  assert.equal(CallosumClient.CallosumClient, CallosumClient);
  assert.equal(CallosumClient.default, CallosumClient);
});

test('C2: a client is an EventEmitter', () => {
  assert.ok(new CallosumClient() instanceof EventEmitter);
});

test('C3: getConnection lends the very socket offered, lowest idle slot first, else undefined', () => {
  const c = client({ MAX_SLOTS: 10 });
  const s5 = socket(),
    s2 = socket(),
    s9 = socket();
  c.newConnection(5, s5);
  c.newConnection(2, s2);
  c.newConnection(9, s9);
  assert.equal(c.getConnection(), s2);
  assert.equal(s2._leased, true);
  assert.equal(c.getConnection(), s5);
  assert.equal(c.getConnection(), s9);
  assert.equal(c.getConnection(), undefined);
  assert.deepEqual(c.errors, []);
});

test('C5: returnConnection makes a leased socket idle again', () => {
  const c = client({ MAX_SLOTS: 5 });
  const a = socket();
  c.newConnection(0, a);
  assert.equal(c.getConnection(), a);
  assert.equal(c.getConnection(), undefined);
  c.returnConnection(a);
  assert.equal(a._leased, false);
  assert.equal(c.getConnection(), a);
});

test('C7: slotCount counts live kept sockets, idle or leased, not displaced', () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket(),
    b = socket();
  assert.equal(c.slotCount, 0);
  c.newConnection(7, a);
  c.newConnection(9, b);
  c.getConnection();
  c.getConnection();
  assert.equal(c.slotCount, 2);
  c.newConnection(1, socket()); // displaces leased b
  assert.equal(c.slotCount, 2);
  c.returnConnection(b);
  assert.equal(c.slotCount, 2);
  a.emit('close');
  assert.equal(c.slotCount, 1);
});

test('C8: sockets carry _slot, _leased, _destroyed and _destroySocket', () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket();
  c.newConnection(3, a);
  assert.equal(a._slot, 3);
  assert.equal(a._leased, false);
  assert.equal(a._destroyed, false);
  assert.equal(typeof a._destroySocket, 'function');
  c.getConnection();
  assert.equal(a._leased, true);
  c.returnConnection(a);
  assert.equal(a._leased, false);
  a.emit('close');
  assert.equal(a._destroyed, true);
});

test('C8: marks are kept true when the pool itself destroys a socket', () => {
  const c = client({ MAX_SLOTS: 1 });
  const high = socket();
  c.newConnection(9, high);
  c.getConnection();
  c.newConnection(1, socket()); // displaces leased `high`
  c.returnConnection(high);
  assert.deepEqual([high.destroyed, high._destroyed, high._leased], [true, true, false]);
  const idle = c.getConnection();
  c.returnConnection(idle);
  c.close();
  assert.deepEqual([idle.destroyed, idle._destroyed, idle._leased], [true, true, false]);
});

// The handle table (issue 19, mutation run): a handle freed by a socket that
// died is reused for the next socket kept, on another slot. What is lent must
// follow the new socket's slot, the dead socket must never come back, and its
// late return must not touch the socket that now has its handle.
test('C3/C5: a freed handle reused on another slot: lent by its new slot, the old socket never lent, its late return refused', () => {
  const c = client({ MAX_SLOTS: 3 });
  const a = socket(),
    b = socket(),
    d = socket();
  c.newConnection(2, a);
  c.newConnection(4, b);
  c.newConnection(6, d);
  a.emit('close'); // idle `a` is dropped: its handle is free
  assert.equal(c.slotCount, 2);
  const e = socket();
  c.newConnection(9, e); // kept on a slot of its own, in a freed handle
  assert.equal(c.slotCount, 3);
  assert.equal(e._slot, 9);
  const first = [c.getConnection(), c.getConnection(), c.getConnection(), c.getConnection()];
  assert.deepEqual(first, [b, d, e, undefined], 'lent by slot: 4, 6, 9');
  for (const s of [e, b, d]) c.returnConnection(s);

  // Lent, then dead: its handle is freed by its quiet return, then reused by
  // a socket on a lower slot than any.
  assert.equal(c.getConnection(), b);
  b.emit('close', true);
  assert.equal(c.slotCount, 2);
  c.returnConnection(b); // its one quiet return
  assert.deepEqual(c.errors, []);
  const f = socket();
  c.newConnection(1, f);
  assert.equal(c.slotCount, 3);
  c.returnConnection(b); // late again: refused, and `f` (maybe in b's handle) stays idle
  assert.deepEqual(
    c.errors.map((x) => x.code),
    ['ERR_CALLOSUM_NOT_LEASED'],
  );
  assert.equal(c.stats().idle, 3);
  assert.equal(c.stats().leased, 0);
  const again = [c.getConnection(), c.getConnection(), c.getConnection(), c.getConnection()];
  assert.deepEqual(again, [f, d, e, undefined], 'lent by slot: 1, 6, 9');
  assert.ok(!again.includes(a) && !again.includes(b), 'a dead socket was lent');
  assert.equal(f._slot, 1);
  assert.equal(c.errors.length, 1);
});

test('D1: two million get/return cycles leave the heap flat', { timeout: 60_000 }, () => {
  const c = client({ MAX_SLOTS: 100 });
  for (let i = 0; i < 100; i++) c.newConnection(i, new FakeSocket(i));
  const cycle = (n) => {
    for (let i = 0; i < n; i++) c.returnConnection(c.getConnection());
  };
  cycle(200_000); // warm up: JIT, table sizes
  gc();
  const before = process.memoryUsage().heapUsed;
  cycle(2_000_000);
  gc();
  const after = process.memoryUsage().heapUsed;
  // The original grew ~64 bytes a cycle: ~128 MB here. Allow 1 MB of noise.
  assert.ok(after - before < 1_000_000, `heap grew ${after - before} bytes over 2M cycles`);
  assert.equal(c.slotCount, 100);
  assert.equal(c.stats().idle, 100);
  assert.deepEqual(c.errors, []);
});

test('D3: returning a socket twice does not lend it twice', () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket();
  c.newConnection(1, a);
  c.returnConnection(c.getConnection());
  c.returnConnection(a);
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0].code, 'ERR_CALLOSUM_NOT_LEASED');
  assert.equal(c.getConnection(), a);
  assert.equal(c.getConnection(), undefined, 'lent once only');
});

test('D4: returning a socket the pool never had does not adopt it', () => {
  const c = client({ MAX_SLOTS: 2 });
  const stranger = socket();
  c.returnConnection(stranger);
  assert.equal(c.getConnection(), undefined, 'not adopted');
  assert.equal(c.slotCount, 0);
  assert.equal(c.errors[0]?.code, 'ERR_CALLOSUM_NOT_LEASED');
  assert.equal(stranger.destroyed, false, 'left alone');
});
