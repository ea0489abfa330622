'use strict';

// The memory a pool shares with JavaScript is laid out once, in
// src/shared.rs, and lib/native.js reads every index and code from the
// addon. These tests fail if what JavaScript uses and what Rust uses differ
// anywhere: a probe block tagged by name at each index Rust writes, then a
// round trip through every operation, each read and written at the indices
// lib/native.js exports. Then many pools at once, and pools in worker threads:
// each native pool is its own.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const binding = require('../binding.js');
const N = require('../lib/native.js');
const { socket, client } = require('./helpers.js');

const root = path.join(__dirname, '..');

const IO_INDICES = [
  'IO_SLOT',
  'IO_LEASE',
  'IO_HANDLE',
  'IO_VICTIM',
  'IO_VICTIM_SLOT',
  'IO_VICTIM_LEASED',
  'IO_REFUSE_FROM',
  'IO_SERVER',
  'IO_CLOCK_MS',
];
const META_INDICES = ['META_QUEUE_LEN', 'META_SLOT_COUNT', 'META_RESULT', 'META_SAMPLES', 'META_QUEUE'];
const NOT_INDICES = ['IO_LEN', 'META_LEN', 'IO_BYTE_OFFSET', 'META_BYTE_OFFSET'];

// shared::probe_tag, in JavaScript: a hash of the name.
function tag(name) {
  let h = 0;
  for (const c of Buffer.from(name)) h = (Math.imul(h, 31) + c) >>> 0;
  return (h % 1_000_000) + 1;
}

// Runs an entry point on one pool, as lib/client.js does.
function run(entry, native) {
  N.control[N.CONTROL_POOL] = native.id;
  entry();
}

function offer(native, slot, lend = false) {
  native.io[N.IO_SLOT] = slot;
  native.io[N.IO_LEASE] = lend ? 1 : 0;
  run(N.offer, native);
  return native.meta[N.META_RESULT];
}

test('every index JavaScript uses holds what Rust wrote there under that name', () => {
  const { io, meta } = N.views(binding.layoutProbe());
  for (const name of IO_INDICES) assert.equal(io[N[name]], tag(name), name);
  for (const name of META_INDICES) assert.equal(meta[N[name]], tag(name), name);
  // Nothing else is tagged: no name is written at an index JavaScript skips.
  const tagged = new Set([...IO_INDICES.map((n) => N[n])]);
  io.forEach((v, i) => {
    if (!tagged.has(i)) assert.equal(v, 0, `io[${i}]`);
  });
  const metaTagged = new Set(META_INDICES.map((n) => N[n]));
  meta.forEach((v, i) => {
    if (!metaTagged.has(i)) assert.equal(v, 0, `meta[${i}]`);
  });
});

test("every index Rust exports is covered here, and lib/native.js exports the addon's values", () => {
  const layout = binding.layout();
  for (const name of Object.keys(layout)) {
    if (/^(IO|META)_/.test(name) && !NOT_INDICES.includes(name)) {
      assert.ok(IO_INDICES.includes(name) || META_INDICES.includes(name), `${name} is not probed`);
    }
    if (name in N) assert.equal(N[name], layout[name], name);
  }
  const codes = ['OFFER_KEPT', 'OFFER_FULL', 'OFFER_CLOSED', 'OFFER_BAD_SLOT', 'OFFER_BAD_SERVER'].map((n) => N[n]);
  assert.equal(new Set(codes).size, codes.length, 'offer codes are distinct');
  assert.ok(N.META_QUEUE + N.QUEUE_CAP <= N.META_LEN);
});

test('round trip: offer, lease, queued returns, full, displacement, release, remove, close', () => {
  const a = N.createNative(2);
  const stats = () => a.pool.stats();

  assert.equal(offer(a, 7), N.OFFER_KEPT);
  const h7 = a.io[N.IO_HANDLE];
  assert.equal(a.io[N.IO_VICTIM], -1);
  assert.equal(a.meta[N.META_SLOT_COUNT], 1);
  assert.equal(a.io[N.IO_REFUSE_FROM], Infinity, 'room left');
  assert.deepEqual([stats().lowest, stats().idle, stats().leased], [7, 1, 0]);

  // IO_LEASE: kept and lent at once.
  assert.equal(offer(a, 3, true), N.OFFER_KEPT);
  const h3 = a.io[N.IO_HANDLE];
  assert.notEqual(h3, h7);
  assert.deepEqual([stats().idle, stats().leased, a.meta[N.META_SLOT_COUNT]], [1, 1, 2]);

  // lease: META_RESULT names the handle lent, then -1 when none is idle.
  run(N.lease, a);
  assert.equal(a.meta[N.META_RESULT], h7);
  run(N.lease, a);
  assert.equal(a.meta[N.META_RESULT], -1);

  // The return queue: applied (and emptied) by the next crossing.
  a.meta[N.META_QUEUE] = h7;
  a.meta[N.META_QUEUE_LEN] = 1;
  run(N.flush, a);
  assert.equal(a.meta[N.META_QUEUE_LEN], 0);
  assert.deepEqual([stats().idle, stats().leased], [1, 1]);

  // Full: refused, IO_VICTIM_SLOT names the highest slot kept, and
  // IO_REFUSE_FROM (published after every call) says so before any offer.
  assert.equal(a.io[N.IO_REFUSE_FROM], 7);
  assert.equal(offer(a, 9), N.OFFER_FULL);
  assert.equal(a.io[N.IO_VICTIM_SLOT], 7);

  // Displacing the idle 7, then the lent 3.
  assert.equal(offer(a, 1), N.OFFER_KEPT);
  const h1 = a.io[N.IO_HANDLE];
  assert.deepEqual([a.io[N.IO_VICTIM], a.io[N.IO_VICTIM_SLOT], a.io[N.IO_VICTIM_LEASED]], [h7, 7, 0]);
  assert.equal(offer(a, 0), N.OFFER_KEPT);
  assert.deepEqual([a.io[N.IO_VICTIM], a.io[N.IO_VICTIM_SLOT], a.io[N.IO_VICTIM_LEASED]], [h3, 3, 1]);
  assert.equal(stats().displaced, 1);

  // release and remove take their handle in IO_HANDLE.
  a.io[N.IO_HANDLE] = h3;
  run(N.release, a);
  assert.deepEqual([stats().displaced, stats().idle + stats().leased, a.meta[N.META_SLOT_COUNT]], [0, 2, 2]);
  a.io[N.IO_HANDLE] = h1;
  run(N.remove, a);
  assert.deepEqual([stats().idle, a.meta[N.META_SLOT_COUNT], stats().lowest], [1, 1, 0]);

  // A slot that is not a non-negative safe integer.
  assert.equal(offer(a, -1), N.OFFER_BAD_SLOT);
  assert.equal(offer(a, 0.5), N.OFFER_BAD_SLOT);

  a.pool.close();
  assert.equal(offer(a, 0), N.OFFER_CLOSED);
  assert.deepEqual([stats().closed, stats().idle, a.meta[N.META_SLOT_COUNT]], [true, 0, 0]);
});

test('round trip: control[CONTROL_POOL] names the pool a call is for', () => {
  const a = N.createNative(4);
  const b = N.createNative(4);
  assert.notEqual(a.id, b.id);
  offer(b, 5);
  offer(b, 6);
  assert.deepEqual([a.pool.stats().slotCount, b.pool.stats().slotCount], [0, 2]);
  assert.equal(a.meta[N.META_SLOT_COUNT], 0);
  assert.equal(b.meta[N.META_SLOT_COUNT], 2);
});

test('many pools at once, collected and replaced, never see each other', async () => {
  const v8 = require('node:v8');
  const vm = require('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = global.gc ?? vm.runInNewContext('gc');
  const make = (n) =>
    Array.from({ length: n }, (_, i) => {
      const c = client({ MAX_SLOTS: 2 });
      c.newConnection(i, socket());
      return c;
    });
  make(200); // garbage: their native pools are freed and their ids reused
  await new Promise((r) => setImmediate(r));
  gc();
  await new Promise((r) => setImmediate(r));
  const pools = make(50);
  pools.forEach((c, i) => {
    const s = c.getConnection();
    assert.equal(s._slot, i);
    assert.equal(c.getConnection(), undefined);
    c.returnConnection(s);
  });
  for (const [i, c] of pools.entries()) {
    assert.deepEqual([c.slotCount, c.stats().idle, c.stats().lowestSlot], [1, 1, i]);
  }
});

test('the addon works in worker threads, each with its own pools', async () => {
  const { Worker } = require('node:worker_threads');
  const code = `
    const { parentPort } = require('node:worker_threads');
    const C = require(${JSON.stringify(root)});
    const net = require('node:net');
    const c = new C({ MAX_SLOTS: 2 });
    const a = new net.Socket(), b = new net.Socket();
    c.newConnection(4, a); c.newConnection(1, b);
    const s = c.getConnection();
    c.returnConnection(s);
    parentPort.postMessage([s === b, c.slotCount]);
  `;
  const results = await Promise.all(
    [1, 2, 3].map(
      () =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, { eval: true });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  assert.deepEqual(results, [
    [true, 2],
    [true, 2],
    [true, 2],
  ]);
});
