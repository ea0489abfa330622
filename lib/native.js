'use strict';

// The native pool and the memory it shares with JavaScript, and the bridge a
// client calls it through (NativeBridge: the crossing, the poison flag).
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
// An addon built from other sources is refused at load with
// ERR_CALLOSUM_NATIVE_MISMATCH.
//
// Shared state: see lib/handles.js (collaborator objects owned by the client).

const binding = require('../binding.js');
const { errors } = require('./errors.js');

const { NativePool, entryPoints } = binding;

// The names this package uses; an addon built from other sources that lacks
// one of them is refused here rather than read as `undefined`. (Issue 20's
// adaptive mode adds its names here, e.g. IO_SERVER, when the client uses them.)
const NAMES = [
  'IO_SLOT',
  'IO_LEASE',
  'IO_HANDLE',
  'IO_VICTIM',
  'IO_VICTIM_SLOT',
  'IO_VICTIM_LEASED',
  'IO_REFUSE_FROM',
  'IO_LEN',
  'META_QUEUE_LEN',
  'META_SLOT_COUNT',
  'META_RESULT',
  'META_QUEUE',
  'META_LEN',
  'QUEUE_CAP',
  'IO_BYTE_OFFSET',
  'META_BYTE_OFFSET',
  'SHARED_BYTES',
  'OFFER_KEPT',
  'OFFER_FULL',
  'OFFER_CLOSED',
  'OFFER_BAD_SLOT',
  'CONTROL_POOL',
  'CONTROL_LEN',
  // Adaptive pools (E6): the server of an offer, the clock of sampled
  // returns, the batch mark, and the queue's two-word samples.
  'IO_SERVER',
  'IO_CLOCK_MS',
  'META_SAMPLES',
  'OFFER_BAD_SERVER',
  'QUEUE_SAMPLE_WORDS',
  'SAMPLE_MAX_US',
];

/**
 * @typedef {{ IO_SLOT: number, IO_LEASE: number, IO_HANDLE: number, IO_VICTIM: number, IO_VICTIM_SLOT: number,
 *   IO_VICTIM_LEASED: number, IO_REFUSE_FROM: number, IO_LEN: number, META_QUEUE_LEN: number,
 *   META_SLOT_COUNT: number, META_RESULT: number, META_QUEUE: number, META_LEN: number, QUEUE_CAP: number,
 *   IO_BYTE_OFFSET: number, META_BYTE_OFFSET: number, SHARED_BYTES: number, OFFER_KEPT: number,
 *   OFFER_FULL: number, OFFER_CLOSED: number, OFFER_BAD_SLOT: number, CONTROL_POOL: number,
 *   CONTROL_LEN: number, IO_SERVER: number, IO_CLOCK_MS: number, META_SAMPLES: number, OFFER_BAD_SERVER: number,
 *   QUEUE_SAMPLE_WORDS: number, SAMPLE_MAX_US: number }} Layout
 */

/** @returns {Readonly<Layout>} */
function readLayout() {
  const layout = typeof binding.layout === 'function' ? binding.layout() : {};
  const missing = NAMES.filter((name) => !Number.isSafeInteger(layout[name]));
  if (missing.length !== 0) throw errors.ERR_CALLOSUM_NATIVE_MISMATCH('names', missing);
  /** @type {Record<string, number>} */
  const out = {};
  for (const name of NAMES) out[name] = layout[name];
  return Object.freeze(/** @type {Layout} */ (out));
}

const L = readLayout();

const { lease, offer, flush, release, remove, control: controlBuffer } = entryPoints();
const control = new Int32Array(controlBuffer, 0, L.CONTROL_LEN);
const { CONTROL_POOL } = L;

// Typed views of a block laid out as a pool's: `io` (Float64Array) and
// `meta` (Int32Array: a lease of nothing reads -1).
/** @param {ArrayBuffer} buffer */
function views(buffer) {
  if (buffer.byteLength !== L.SHARED_BYTES) {
    throw errors.ERR_CALLOSUM_NATIVE_MISMATCH('bytes', buffer.byteLength, L.SHARED_BYTES);
  }
  return {
    io: new Float64Array(buffer, L.IO_BYTE_OFFSET, L.IO_LEN),
    meta: new Int32Array(buffer, L.META_BYTE_OFFSET, L.META_LEN),
  };
}

// A native pool and views of the memory it shares with JavaScript.
/**
 * @param {number} maxSlots
 * @param {boolean} [adaptive]
 */
function createNative(maxSlots, adaptive = false) {
  const pool = new NativePool(maxSlots, adaptive);
  const { io, meta } = views(pool.buffer());
  return { pool, id: pool.id, io, meta };
}

/**
 * One client's native pool, and the way every call but the lease of the hot
 * path crosses into it. A call that throws poisons the bridge (a panic in
 * Rust): it refuses every later call, and `onFault` hears of it once.
 */
class NativeBridge {
  /**
   * @param {number} maxSlots
   * @param {boolean} adaptive
   * @param {(err: Error) => void} onFault
   */
  constructor(maxSlots, adaptive, onFault) {
    const native = createNative(maxSlots, adaptive);
    this.pool = native.pool;
    /** Names this pool to the shared entry points (control[CONTROL_POOL]). */
    this.id = native.id;
    this.io = native.io;
    this.meta = native.meta;
    this.poisoned = false;
    this.onFault = onFault;
  }

  /**
   * A rare native call (flush, offer, release, remove): false if the pool is poisoned, now or from before.
   * @param {() => void} entry
   */
  call(entry) {
    if (this.poisoned) return false;
    control[CONTROL_POOL] = this.id;
    try {
      entry();
      return true;
    } catch (err) {
      this.fault(err);
      return false;
    }
  }

  /**
   * A native call threw: the pool is poisoned (a panic in Rust) and refuses every later call. Heard once by
   * `onFault`, as a coded error (ERR_CALLOSUM_POISONED unless the addon's own error has a code).
   * @param {unknown} err
   */
  fault(err) {
    if (this.poisoned) return;
    this.poisoned = true;
    const coded = typeof err === 'object' && err !== null && typeof (/** @type {any} */ (err).code) === 'string';
    this.onFault(coded ? /** @type {Error} */ (err) : errors.ERR_CALLOSUM_POISONED(err));
  }

  // The rare calls that take a handle: `release` (a lent socket given back to
  // be destroyed) and `remove` (a dead one).
  /** @param {number} h */
  release(h) {
    this.io[L.IO_HANDLE] = h;
    this.call(release);
  }

  /** @param {number} h */
  remove(h) {
    this.io[L.IO_HANDLE] = h;
    this.call(remove);
  }

  /** The pool's own counts, or null once poisoned. */
  stats() {
    if (this.poisoned) return null;
    try {
      return this.pool.stats();
    } catch (err) {
      this.fault(err);
      return null;
    }
  }

  /**
   * An adaptive pool's servers, by index, or null once poisoned.
   * @returns {Array<{ server: number, held: number, leases: number, estimateMs?: number, weight: number }> | null}
   */
  servers() {
    if (this.poisoned) return null;
    try {
      return this.pool.servers();
    } catch (err) {
      this.fault(err);
      return null;
    }
  }

  /** Closes the native pool (no more lending or keeping), unless poisoned. */
  close() {
    if (this.poisoned) return;
    try {
      this.pool.close();
    } catch (err) {
      this.fault(err);
    }
  }
}

module.exports = {
  NativeBridge,
  createNative,
  views,
  lease,
  offer,
  flush,
  release,
  remove,
  control,
  ...L,
};
