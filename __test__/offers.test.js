'use strict';

// Offers and displacement: newConnection (and insertSocket) below and at
// MAX_SLOTS, refusal of an equal or higher slot, displacement of the highest
// idle or leased socket, and the same socket offered twice. SPEC C4, C8, D5,
// D7, B8.

const test = require('node:test');
const assert = require('node:assert/strict');
const { socket, client } = require('./helpers.js');

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
  const equal = socket(),
    higher = socket();
  c.newConnection(4, equal);
  c.newConnection(9, higher);
  assert.equal(equal.destroyed, true);
  assert.equal(higher.destroyed, true);
  assert.equal(c.slotCount, 2);
});

test('C4: when full, a lower slot displaces the highest idle one, destroyed at once', () => {
  const c = client({ MAX_SLOTS: 2 });
  const low = socket(),
    high = socket(),
    lower = socket();
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
  const high = socket(),
    low = socket();
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

test('C8: insertSocket keeps every invariant (it is newConnection)', () => {
  const c = client({ MAX_SLOTS: 1 });
  const a = socket(),
    b = socket();
  c.insertSocket(5, a);
  c.insertSocket(5, a);
  c.insertSocket(6, b);
  assert.equal(c.slotCount, 1);
  assert.equal(b.destroyed, true);
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0].code, 'ERR_CALLOSUM_SOCKET_HELD');
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
  const x = socket(),
    y = socket();
  d.newConnection(5, x);
  d.newConnection(6, y);
  x.emit('close');
  y.emit('close');
  const next = socket(),
    later = socket(),
    third = socket();
  d.newConnection(9, next);
  d.newConnection(8, later);
  d.newConnection(10, third);
  assert.deepEqual([next.destroyed, later.destroyed, third.destroyed], [false, false, true]);
  assert.equal(d.slotCount, 2);
});

test('B8: slotCount never exceeds MAX_SLOTS under displacement churn', () => {
  const c = client({ MAX_SLOTS: 3 });
  const leased = [];
  for (let slot = 100; slot > 0; slot--) {
    c.newConnection(slot, socket());
    const s = c.getConnection();
    if (s) leased.push(s);
    assert.ok(c.slotCount <= 3);
  }
  for (const s of leased) c.returnConnection(s);
  assert.equal(c.slotCount, 3);
  assert.deepEqual(c.errors, []);
  const st = c.stats();
  assert.equal(st.lowestSlot, 1);
  assert.equal(st.highestSlot, 3);
});
