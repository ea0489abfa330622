'use strict';

// Close and disposal: close() destroys idle sockets now and lent ones when
// returned, rejects the waiters, stops the rovers, refuses later offers; its
// promise, its timeout, and Symbol.asyncDispose. SPEC D9, E1, E4.

const test = require('node:test');
const assert = require('node:assert/strict');
const { socket, client, rejectsWith, delay } = require('./helpers.js');

test('D9: close() shuts the pool down', () => {
  const c = client({ MAX_SLOTS: 3 });
  const idle = socket(),
    leased = socket();
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

test('E1: close() destroys idle now, leased on return, then lends nothing and refuses offers', () => {
  const c = client({ MAX_SLOTS: 4 });
  const [a, b, d] = [socket(), socket(), socket()];
  c.newConnection(1, a);
  c.newConnection(2, b);
  c.newConnection(3, d);
  const lent = c.getConnection();
  c.returnConnection(c.getConnection()); // a queued return, applied by close
  c.close();
  assert.equal(c.closed, true);
  assert.equal(lent, a);
  assert.deepEqual([a.destroyed, b.destroyed, d.destroyed], [false, true, true]);
  assert.equal(c.stats().idle, 0);
  assert.equal(c.getConnection(), undefined);
  c.returnConnection(a);
  assert.equal(a.destroyed, true);
  assert.equal(c.slotCount, 0);
  const late = socket();
  c.newConnection(0, late);
  assert.equal(late.destroyed, true);
  assert.deepEqual(c.errors, []);
});

test('E4: close() rejects every waiter, and acquire after close rejects', async () => {
  const c = client({ MAX_SLOTS: 1 });
  const waiters = [c.acquire(), c.acquire({ timeout: 5000 }), c.acquire({ signal: new AbortController().signal })];
  c.close();
  for (const w of waiters) await rejectsWith(w, 'ERR_CALLOSUM_CLOSED');
  await rejectsWith(c.acquire(), 'ERR_CALLOSUM_CLOSED');
  assert.equal(c.waiting, 0);
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
  closing.then(() => {
    settled = true;
  });
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
