'use strict';

// The native pool and the memory it shares with JavaScript.
//
// A call into Rust costs as much as a whole get+return on a JavaScript heap,
// and each number argument costs more. So the hot entry points (`lease`,
// `offer`, `flush`) take no arguments and return nothing: operands and results
// travel through one shared buffer, and returned handles are queued there to
// be applied by the next crossing. `release` and `remove` take their handle in
// io[IO_HANDLE]. The layout mirrors src/shared.rs.
//
// The entry points are shared by every pool (one function object per call
// site keeps it monomorphic however many pools there are): before each call,
// the caller writes the pool's id into control[CONTROL_POOL].

const { NativePool, entryPoints } = require('../binding.js');

// Float64Array `io` over bytes 0..64.
const IO_SLOT = 0;
const IO_LEASE = 1;
const IO_HANDLE = 2;
const IO_VICTIM = 3;
const IO_VICTIM_SLOT = 4;
const IO_VICTIM_LEASED = 5;
const IO_LEN = 8;

// Int32Array `meta` from byte 64.
const META_QUEUE_LEN = 0;
const META_SLOT_COUNT = 1;
const META_RESULT = 2;
const META_QUEUE = 4;
const QUEUE_CAP = 1024;

// Results of `offer`.
const OFFER_KEPT = 0;
const OFFER_FULL = 1;
const OFFER_CLOSED = 2;

// Handle states, as `remove` reports them (FREE: not in use).
const FREE = 0;
const IDLE = 1;
const LEASED = 2;
const DISPLACED = 3;

const CONTROL_POOL = 0;
const { lease, offer, flush, release, remove, control: controlBuffer } = entryPoints();
const control = new Int32Array(controlBuffer);

// A native pool and views of the memory it shares with JavaScript.
function createNative(maxSlots) {
  const pool = new NativePool(maxSlots);
  const buffer = pool.buffer();
  const io = new Float64Array(buffer, 0, IO_LEN);
  const meta = new Int32Array(buffer, IO_LEN * 8);
  if (meta.length !== META_QUEUE + QUEUE_CAP) {
    throw new Error(`callosum-client-tcp: native layout mismatch (${meta.length} slots); rebuild the addon`);
  }
  return { pool, id: pool.id, io, meta };
}

module.exports = {
  createNative,
  lease, offer, flush, release, remove, control, CONTROL_POOL,
  IO_SLOT, IO_LEASE, IO_HANDLE, IO_VICTIM, IO_VICTIM_SLOT, IO_VICTIM_LEASED,
  META_QUEUE_LEN, META_SLOT_COUNT, META_RESULT, META_QUEUE, QUEUE_CAP,
  OFFER_KEPT, OFFER_FULL, OFFER_CLOSED,
  FREE, IDLE, LEASED, DISPLACED,
};
