'use strict';

// The native pool and the memory it shares with JavaScript.
//
// A call into Rust costs as much as a whole get+return on a JavaScript heap,
// and each number argument costs more. So the hot entry points (`lease`,
// `offer`, `flush`) take no arguments and return nothing: operands and results
// travel through one shared buffer, and returned handles are queued there to
// be applied by the next crossing. `release` and `remove` take their handle in
// io[IO_HANDLE] and leave no result.
//
// The layout (every index, length and result code) is defined once, in
// src/shared.rs, and read here from the addon's `layout()`: nothing is copied
// by hand. __test__/native-layout.test.js checks both sides agree.
//
// The entry points are shared by every pool (one function object per call
// site keeps it monomorphic however many pools there are): before each call,
// the caller writes the pool's id into control[CONTROL_POOL].
//
// Errors: every entry point and NativePool method may throw an Error with a
// `code`: ERR_CALLOSUM_POISONED once a call on that pool panicked (the pool
// refuses every later call; other pools are unaffected), and, on bugs only,
// ERR_CALLOSUM_REENTRANT or ERR_CALLOSUM_NATIVE (src/errors.rs lists them).

const binding = require('../binding.js');

const { NativePool, entryPoints } = binding;

// The names this package uses; an addon built from other sources that lacks
// one of them is refused here rather than read as `undefined`.
const NAMES = [
  'IO_SLOT', 'IO_LEASE', 'IO_HANDLE', 'IO_VICTIM', 'IO_VICTIM_SLOT', 'IO_VICTIM_LEASED', 'IO_REFUSE_FROM', 'IO_LEN',
  'META_QUEUE_LEN', 'META_SLOT_COUNT', 'META_RESULT', 'META_QUEUE', 'META_LEN', 'QUEUE_CAP',
  'IO_BYTE_OFFSET', 'META_BYTE_OFFSET', 'SHARED_BYTES',
  'OFFER_KEPT', 'OFFER_FULL', 'OFFER_CLOSED', 'OFFER_BAD_SLOT',
  'CONTROL_POOL', 'CONTROL_LEN',
];

function readLayout() {
  const layout = typeof binding.layout === 'function' ? binding.layout() : {};
  const missing = NAMES.filter((name) => !Number.isSafeInteger(layout[name]));
  if (missing.length !== 0) {
    throw new Error(`callosum-client-tcp: the native addon does not match lib/native.js ` +
      `(no ${missing.join(', ')} in its layout); rebuild the addon`);
  }
  const out = {};
  for (const name of NAMES) out[name] = layout[name];
  return Object.freeze(out);
}

const L = readLayout();

// Handle states of the client's own table (lib/client.js). Rust never reports
// them: `remove` and `release` leave no result, the client knows the state.
const FREE = 0;
const IDLE = 1;
const LEASED = 2;
const DISPLACED = 3;

const { lease, offer, flush, release, remove, control: controlBuffer } = entryPoints();
const control = new Int32Array(controlBuffer, 0, L.CONTROL_LEN);

// Typed views of a block laid out as a pool's: `io` (Float64Array) and
// `meta` (Int32Array: a lease of nothing reads -1).
function views(buffer) {
  if (buffer.byteLength !== L.SHARED_BYTES) {
    throw new Error(`callosum-client-tcp: native layout mismatch (${buffer.byteLength} bytes, ` +
      `expected ${L.SHARED_BYTES}); rebuild the addon`);
  }
  return {
    io: new Float64Array(buffer, L.IO_BYTE_OFFSET, L.IO_LEN),
    meta: new Int32Array(buffer, L.META_BYTE_OFFSET, L.META_LEN),
  };
}

// A native pool and views of the memory it shares with JavaScript.
function createNative(maxSlots) {
  const pool = new NativePool(maxSlots);
  const { io, meta } = views(pool.buffer());
  return { pool, id: pool.id, io, meta };
}

module.exports = {
  createNative, views,
  lease, offer, flush, release, remove, control,
  ...L,
  FREE, IDLE, LEASED, DISPLACED,
};
