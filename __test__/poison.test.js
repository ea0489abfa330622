'use strict';

// A panic inside a native pool poisons that pool: the call that panicked and
// every later call on it (entry points and methods) throw
// ERR_CALLOSUM_POISONED; other pools carry on. The panic is triggered through
// `__panic`, an entry point the addon adds only when CALLOSUM_TEST_PANIC=1 is
// set as the entry points are made (this file runs in its own process under
// `node --test`). Also: the other codes native calls throw.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const binding = require('../binding.js');
const N = require('../lib/native.js');

function withTestPanic() {
  const before = process.env.CALLOSUM_TEST_PANIC;
  process.env.CALLOSUM_TEST_PANIC = '1';
  try {
    return binding.entryPoints().__panic;
  } finally {
    if (before === undefined) delete process.env.CALLOSUM_TEST_PANIC;
    else process.env.CALLOSUM_TEST_PANIC = before;
  }
}

function run(entry, native) {
  N.control[N.CONTROL_POOL] = native.id;
  entry();
}

function offer(native, slot) {
  native.io[N.IO_SLOT] = slot;
  native.io[N.IO_LEASE] = 0;
  run(N.offer, native);
  return native.meta[N.META_RESULT];
}

const poisoned = (message) => ({ name: 'Error', code: 'ERR_CALLOSUM_POISONED', message });

test('without CALLOSUM_TEST_PANIC=1 there is no way to make a pool panic', () => {
  assert.equal(binding.entryPoints().__panic, undefined);
  assert.equal(N.__panic, undefined);
});

test('a panic poisons its pool: every later call throws ERR_CALLOSUM_POISONED', () => {
  const panic = withTestPanic();
  assert.equal(typeof panic, 'function');
  const a = N.createNative(4);
  assert.equal(offer(a, 3), N.OFFER_KEPT);
  run(N.lease, a);
  const h = a.meta[N.META_RESULT];
  assert.ok(h >= 0);
  // A queued return, applied by the call that then panics.
  a.meta[N.META_QUEUE] = h;
  a.meta[N.META_QUEUE_LEN] = 1;

  assert.throws(() => run(panic, a), poisoned(/panicked .*test panic.*poisoned/));
  assert.equal(a.meta[N.META_QUEUE_LEN], 0, 'the queue is emptied');

  for (const entry of [N.lease, N.offer, N.flush, N.release, N.remove, panic]) {
    assert.throws(() => run(entry, a), poisoned(/poisoned: an earlier call panicked \(test panic/), entry.name);
  }
  assert.throws(() => a.pool.stats(), poisoned(/poisoned/));
  assert.throws(() => a.pool.close(), poisoned(/poisoned/));
  assert.throws(() => a.pool.buffer(), poisoned(/poisoned/));
  // Returns JavaScript queues meanwhile never pile up past the queue.
  a.meta[N.META_QUEUE_LEN] = N.QUEUE_CAP;
  assert.throws(() => run(N.flush, a), poisoned(/poisoned/));
  assert.equal(a.meta[N.META_QUEUE_LEN], 0);
});

test('a poisoned pool leaves the other pools, and new ones, working', () => {
  const panic = withTestPanic();
  const b = N.createNative(2);
  assert.equal(offer(b, 4), N.OFFER_KEPT);
  const a = N.createNative(2);
  assert.equal(offer(a, 1), N.OFFER_KEPT);
  assert.throws(() => run(panic, a), poisoned(/panicked/));
  assert.throws(() => run(N.lease, a), poisoned(/poisoned/));

  run(N.lease, b);
  assert.equal(b.meta[N.META_RESULT], b.io[N.IO_HANDLE]);
  assert.equal(offer(b, 2), N.OFFER_KEPT);
  assert.deepEqual([b.pool.stats().slotCount, b.pool.stats().leased], [2, 1]);
  const c = N.createNative(1);
  assert.equal(offer(c, 0), N.OFFER_KEPT);
  assert.deepEqual(c.pool.close(), [c.io[N.IO_HANDLE]]);
});

test('new NativePool: coded TypeError and RangeError, as the JavaScript side', () => {
  for (const bad of ['3', undefined, null, {}, 3n]) {
    assert.throws(() => new binding.NativePool(bad), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }, String(bad));
  }
  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => new binding.NativePool(bad), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, String(bad));
  }
  assert.equal(new binding.NativePool(2 ** 53 - 1).stats().maxSlots, 2 ** 53 - 1);
});

test('an id that names no live pool throws ERR_CALLOSUM_NATIVE', () => {
  N.control[N.CONTROL_POOL] = 1_000_000;
  assert.throws(() => N.lease(), { code: 'ERR_CALLOSUM_NATIVE', message: /names no live pool/ });
});

test('the client reports a poisoned pool once, then behaves as closed; its sockets are destroyed as close() would', async () => {
  const panic = withTestPanic();
  const CallosumClient = require('..');
  const net = require('node:net');
  const c = new CallosumClient({ MAX_SLOTS: 3 });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const idle = new net.Socket();
  const lent = new net.Socket();
  c.newConnection(1, idle);
  c.newConnection(0, lent);
  assert.equal(c.getConnection(), lent); // control[CONTROL_POOL] names this client's pool now
  assert.throws(() => panic(), { code: 'ERR_CALLOSUM_POISONED' });

  assert.equal(c.getConnection(), undefined);
  assert.equal(c.getConnection(), undefined);
  assert.deepEqual(
    errors.map((e) => e.code),
    ['ERR_CALLOSUM_POISONED'],
    'reported once',
  );
  assert.equal(c.closed, true);
  assert.equal(idle.destroyed, true, 'idle sockets destroyed, as close() does');
  const offered = new net.Socket();
  c.newConnection(0, offered);
  assert.equal(offered.destroyed, true, 'offers are refused and destroyed');
  const closing = c.close();
  c.returnConnection(lent);
  assert.equal(lent.destroyed, true, 'a lent socket is destroyed when returned');
  await closing;
  assert.equal(c.stats().slotCount, 0);
  await assert.rejects(c.acquire(), { code: 'ERR_CALLOSUM_CLOSED' });
  assert.equal(errors.length, 1);
  // Other pools carry on.
  const d = new CallosumClient();
  d.newConnection(0, new net.Socket());
  assert.equal(d.getConnection()._slot, 0);
});
