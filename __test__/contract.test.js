'use strict';

// SPEC C1-C8: the drop-in contract of the original module.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const { socket, client, loopback, until, CallosumClient } = require('./helpers.js');

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
  const s5 = socket(), s2 = socket(), s9 = socket();
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

test('C4: below MAX_SLOTS every offer is kept', () => {
  const c = client({ MAX_SLOTS: 3 });
  const s = [socket(), socket(), socket()];
  c.newConnection(50, s[0]);
  c.newConnection(40, s[1]);
  c.newConnection(60, s[2]);
  assert.equal(c.slotCount, 3);
  assert.ok(s.every((x) => !x.destroyed));
});

test('C4: when full, an equal or higher slot is destroyed', () => {
  const c = client({ MAX_SLOTS: 2 });
  c.newConnection(1, socket());
  c.newConnection(4, socket());
  const equal = socket(), higher = socket();
  c.newConnection(4, equal);
  c.newConnection(9, higher);
  assert.equal(equal.destroyed, true);
  assert.equal(higher.destroyed, true);
  assert.equal(c.slotCount, 2);
});

test('C4: when full, a lower slot displaces the highest idle one, destroyed at once', () => {
  const c = client({ MAX_SLOTS: 2 });
  const low = socket(), high = socket(), lower = socket();
  c.newConnection(1, low);
  c.newConnection(8, high);
  c.newConnection(3, lower);
  assert.equal(high.destroyed, true);
  assert.equal(lower.destroyed, false);
  assert.equal(c.slotCount, 2);
  assert.equal(c.getConnection(), low);
  assert.equal(c.getConnection(), lower);
  assert.equal(c.getConnection(), undefined);
});

test('C4/C5: a displaced leased socket is destroyed when returned, never lent again', () => {
  const c = client({ MAX_SLOTS: 1 });
  const high = socket(), low = socket();
  c.newConnection(8, high);
  assert.equal(c.getConnection(), high);
  c.newConnection(3, low);
  assert.equal(high.destroyed, false, 'not destroyed under its user');
  assert.equal(c.slotCount, 1);
  assert.equal(c.getConnection(), low);
  c.returnConnection(high);
  assert.equal(high.destroyed, true);
  c.returnConnection(low);
  assert.equal(c.getConnection(), low);
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

test('C5: a socket that died while leased is dropped when returned, quietly', () => {
  const c = client({ MAX_SLOTS: 5 });
  const a = socket();
  c.newConnection(0, a);
  c.getConnection();
  a.emit('close', false);
  assert.equal(c.slotCount, 0);
  c.returnConnection(a);
  assert.deepEqual(c.errors, []);
  assert.equal(c.getConnection(), undefined);
});

for (const event of ['end', 'error', 'close']) {
  test(`C6: a kept socket that emits '${event}' is dropped and frees its slot, once`, () => {
    const c = client({ MAX_SLOTS: 2 });
    const a = socket(), b = socket();
    c.newConnection(1, a);
    c.newConnection(2, b);
    a.emit(event, event === 'error' ? new Error('boom') : undefined);
    assert.equal(c.slotCount, 1);
    // The other two events that usually follow change nothing more.
    a.emit('end');
    a.emit('error', new Error('again'));
    a.emit('close', true);
    assert.equal(c.slotCount, 1);
    assert.equal(c.getConnection(), b);
    assert.equal(c.getConnection(), undefined);
    // The freed slot takes a new socket.
    c.newConnection(5, socket());
    assert.equal(c.slotCount, 2);
    assert.deepEqual(c.errors, [], 'socket faults are not pool errors');
  });
}

test("C6: an 'error' on a pooled socket with no other listener does not crash", () => {
  const c = new CallosumClient({ MAX_SLOTS: 1 });
  const a = socket();
  c.newConnection(1, a);
  assert.doesNotThrow(() => a.emit('error', new Error('ECONNRESET')));
  assert.equal(c.slotCount, 0);
});

test('C6: over loopback, peers that close and reset are dropped and their slots freed', async () => {
  const net = await loopback(4);
  try {
    const c = client({ MAX_SLOTS: 4 });
    net.sockets.forEach((s, i) => c.newConnection(i, s));
    assert.equal(c.slotCount, 4);
    const leased = c.getConnection(); // slot 0
    net.peers[1].end(); // graceful close of idle slot 1
    net.peers[2].resetAndDestroy(); // RST on idle slot 2
    net.peers[0].resetAndDestroy(); // RST on the leased slot 0
    await until(() => c.slotCount === 1, 'three sockets dropped');
    assert.equal(c.getConnection(), net.sockets[3]);
    assert.equal(c.getConnection(), undefined);
    c.returnConnection(leased); // died while leased: dropped quietly
    assert.equal(c.getConnection(), undefined);
    assert.deepEqual(c.errors, []);
    c.close();
  } finally {
    await net.close();
  }
});

test('C7: slotCount counts live kept sockets, idle or leased, not displaced', () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket(), b = socket();
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

test('C8: insertSocket keeps every invariant (it is newConnection)', () => {
  const c = client({ MAX_SLOTS: 1 });
  const a = socket(), b = socket();
  c.insertSocket(5, a);
  c.insertSocket(5, a);
  c.insertSocket(6, b);
  assert.equal(c.slotCount, 1);
  assert.equal(b.destroyed, true);
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0].code, 'ERR_CALLOSUM_SOCKET_HELD');
});
