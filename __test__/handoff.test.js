'use strict';

// Issue 12, fault 3: a second return made before the waiter the socket was
// handed to could run is refused (ERR_CALLOSUM_NOT_LEASED) and the socket is
// lent to nobody else; the waiter's own return is always accepted.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { socket, client } = require('./helpers.js');

test('a double return in the same tick, while someone waits: the second is NOT_LEASED, the socket has one holder', async () => {
  const c = client({ MAX_SLOTS: 2 });
  const s = socket();
  c.newConnection(0, s);
  const a = c.getConnection();
  assert.equal(a, s);
  const waiting = c.acquire();
  c.returnConnection(a); // handed to the waiter
  c.returnConnection(a); // the same caller again, same tick
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0].code, 'ERR_CALLOSUM_NOT_LEASED');
  assert.match(c.errors[0].message, /handed to a waiter/);
  assert.equal(c.getConnection(), undefined, 'the socket the waiter now holds was lent again');
  assert.equal(await waiting, s);
  assert.equal(c.stats().leased, 1);
  // The waiter's own return, right away, is accepted.
  c.returnConnection(s);
  assert.equal(c.errors.length, 1);
  assert.equal(c.getConnection(), s);
});

test('once the waiter could have run, a return is taken as its own (the limit README states)', async () => {
  const c = client({ MAX_SLOTS: 1 });
  const s = socket();
  c.newConnection(0, s);
  c.getConnection();
  const waiting = c.acquire();
  c.returnConnection(s);
  await null; // the hand-off is received before this continuation runs
  c.returnConnection(s); // the previous holder's late second return, or the waiter's: the same call
  assert.deepEqual(c.errors, []);
  assert.equal(await waiting, s);
  assert.equal(c.stats().idle, 1);
});

test('a socket newly kept and handed to a waiter: a return before the waiter runs is NOT_LEASED', async () => {
  const c = client({ MAX_SLOTS: 2 });
  const waiting = c.acquire();
  const s = socket();
  c.newConnection(0, s);
  c.returnConnection(s); // nobody was lent it but the waiter
  assert.equal(c.errors.at(-1).code, 'ERR_CALLOSUM_NOT_LEASED');
  assert.equal(await waiting, s);
  c.returnConnection(s);
  assert.equal(c.errors.length, 1);
  assert.equal(c.stats().idle, 1);
});

test('a handed socket that dies before its waiter runs: the waiter gets it dead, its return is quiet', async () => {
  const c = client({ MAX_SLOTS: 2 });
  const s = socket();
  c.newConnection(0, s);
  c.getConnection();
  const waiting = c.acquire();
  c.returnConnection(s);
  s.emit('close', true);
  assert.equal(c.slotCount, 0);
  assert.equal(await waiting, s);
  c.returnConnection(s);
  assert.deepEqual(c.errors, []);
  assert.equal(c.counters().droppedLeased, 1);
});

test('lease(): a Lease is released once; a second release is NOT_LEASED even after the socket went to another user', async () => {
  const c = client({ MAX_SLOTS: 1 });
  const s = socket();
  c.newConnection(0, s);
  const first = await c.lease();
  assert.equal(first.socket, s);
  const waiting = c.lease(); // waits for the only socket
  first.release(); // handed to the waiter
  const second = await waiting;
  assert.equal(second.socket, s);
  assert.equal(first.released, true);
  assert.equal(first.socket, undefined);
  first.release(); // late: with bare sockets this would look like the holder's own return
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0].code, 'ERR_CALLOSUM_NOT_LEASED');
  assert.equal(c.stats().leased, 1, 'the socket stays with the second holder');
  assert.equal(c.getConnection(), undefined);
  const dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');
  second[dispose](); // `using lease = await client.lease()` ends here
  assert.equal(c.stats().idle, 1);
  second[dispose]();
  assert.equal(c.errors.length, 1, 'disposing a released lease is quiet');
  await assert.rejects(c.lease({ timeout: 'x' }), { code: 'ERR_INVALID_ARG_TYPE' });
});
