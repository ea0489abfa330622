'use strict';

// SPEC D1-D9: defects of the original 0.1.5, each fixed here. Every test
// asserts the behaviour the original got wrong.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const v8 = require('node:v8');
const vm = require('node:vm');
const { socket, client } = require('./helpers.js');

// npm test passes --expose-gc; this also works when the file runs alone.
v8.setFlagsFromString('--expose-gc');
const gc = global.gc ?? (typeof Bun === 'object' ? () => Bun.gc(true) : vm.runInNewContext('gc'));

// A minimal socket for the memory test: two million real net.Sockets would
// measure Node, not the pool.
function fakeSocket() {
  const s = new EventEmitter();
  s.destroyed = false;
  s.destroy = function destroy() {
    this.destroyed = true;
  };
  return s;
}

test('D1: two million get/return cycles leave the heap flat', { timeout: 60_000 }, () => {
  const c = client({ MAX_SLOTS: 100 });
  for (let i = 0; i < 100; i++) c.newConnection(i, fakeSocket());
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

test('D2: a displaced leased socket that errors or closes does not free a slot again', () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket(), high = socket();
  c.newConnection(1, a);
  c.newConnection(9, high);
  c.getConnection();
  assert.equal(c.getConnection(), high);
  c.newConnection(2, socket()); // displaces leased `high`
  high.emit('error', new Error('reset'));
  high.emit('close', true);
  assert.equal(c.slotCount, 2);
  // The pool must still be full: a higher slot is refused.
  const extra = socket();
  c.newConnection(5, extra);
  assert.equal(extra.destroyed, true);
  assert.equal(c.slotCount, 2);
  c.returnConnection(high); // its one return, after death: quiet
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

test('D5: offering the same socket twice counts it once', () => {
  const c = client({ MAX_SLOTS: 5 });
  const a = socket();
  c.newConnection(1, a);
  c.newConnection(1, a);
  c.newConnection(2, a);
  assert.equal(c.slotCount, 1);
  assert.equal(c.errors.length, 2);
  assert.ok(c.errors.every((e) => e.code === 'ERR_CALLOSUM_SOCKET_HELD'));
  assert.equal(a.destroyed, false, 'the held socket is left alone');
  assert.equal(c.getConnection(), a);
  assert.equal(c.getConnection(), undefined);
});

test('D6: a socket destroyed before its close event is never lent', () => {
  const c = client({ MAX_SLOTS: 3 });
  const a = socket(), b = socket();
  c.newConnection(1, a);
  c.newConnection(2, b);
  a.destroy(); // 'close' comes on a later tick
  assert.equal(c.getConnection(), b);
  assert.equal(c.getConnection(), undefined);
  assert.equal(c.slotCount, 1, 'its slot freed at once');
});

test('D7: a full pool always keeps or destroys an offered socket', () => {
  const c = client({ MAX_SLOTS: 1 });
  const a = socket();
  c.newConnection(5, a);
  a.emit('close'); // dropped
  // Offered again after it died: the original counted it and kept it in its
  // max heap as a dead entry, so the pool was full with no live socket to
  // compare against, and the next offer was neither kept nor closed.
  c.newConnection(5, a);
  assert.equal(c.slotCount, 0, 'a dead socket takes no slot');
  const b = socket();
  c.newConnection(1, b);
  assert.equal(b.destroyed, false);
  assert.equal(c.getConnection(), b, 'kept');
  // Both kept sockets of a full pool die: the next offers are kept.
  const d = client({ MAX_SLOTS: 2 });
  const x = socket(), y = socket();
  d.newConnection(5, x);
  d.newConnection(6, y);
  x.emit('close');
  y.emit('close');
  const next = socket(), later = socket(), third = socket();
  d.newConnection(9, next);
  d.newConnection(8, later);
  d.newConnection(10, third);
  assert.deepEqual([next.destroyed, later.destroyed, third.destroyed], [false, false, true]);
  assert.equal(d.slotCount, 2);
});

test('D8: slots are checked: strings and NaN are refused, order is numeric', () => {
  const c = client({ MAX_SLOTS: 3 });
  const s10 = socket(), s9 = socket(), str = socket(), nan = socket();
  c.newConnection(10, s10);
  c.newConnection(9, s9);
  c.newConnection('2', str);
  c.newConnection(NaN, nan);
  assert.deepEqual(c.errors.map((e) => e.code), ['ERR_CALLOSUM_INVALID_SLOT', 'ERR_CALLOSUM_INVALID_SLOT']);
  assert.equal(str.destroyed, true);
  assert.equal(nan.destroyed, true);
  assert.equal(c.getConnection(), s9, '9 < 10 as numbers');
  assert.equal(c.slotCount, 2);
});

test('D9: close() shuts the pool down', () => {
  const c = client({ MAX_SLOTS: 3 });
  const idle = socket(), leased = socket();
  c.newConnection(2, idle);
  c.newConnection(1, leased);
  c.getConnection();
  c.close();
  assert.equal(idle.destroyed, true, 'idle destroyed now');
  assert.equal(leased.destroyed, false, 'leased left to its user');
  assert.equal(c.getConnection(), undefined);
  c.returnConnection(leased);
  assert.equal(leased.destroyed, true, 'destroyed when returned');
  const late = socket();
  c.newConnection(0, late);
  assert.equal(late.destroyed, true, 'offers after close are destroyed');
  assert.equal(c.slotCount, 0);
  assert.deepEqual(c.errors, []);
  c.close(); // twice is fine
});
