'use strict';

// Adaptive balancing (E6, `new CallosumClient({ adaptive: true })`), its
// JavaScript half. The decisions are the Rust core's (it ranks connections by
// slot x its server's weight); this file gives it what only JavaScript has:
//
// - which server each offered connection is to: the rover's server id for a
//   connection from client.rove(), otherwise the socket's remote
//   address:port, named to Rust by a small integer (io[IO_SERVER]);
// - how long leases last: a sample of leases is timed with
//   performance.now() and its return queued as two words (the handle
//   complemented, then the microseconds), which the next crossing applies:
//   no crossing of its own (src/shared.rs has the encoding). A clock read
//   costs 40-70 ns here, so timing every lease would break the budget of
//   +15 ns a get+return. One lease in SAMPLE_EVERY is timed, on average,
//   while the pool lends fewer than SAMPLE_EVERY leases a millisecond (every
//   client of the fleet simulator's, where the rate was measured: 1 in 16
//   costs 2 ms of p99 against timing every lease); a busier pool times about
//   one lease a millisecond (at most 1 in MAX_STRIDE), which is still
//   hundreds of samples a second for estimates that move over seconds, and
//   keeps the clock off the hot path.
//
// The client drives it only where a lease begins or ends; a pool that is not
// adaptive has none (the client's checks are one compare against null).
// Shared state: collaborator objects, as everywhere in lib/ (lib/handles.js).

const { performance } = require('node:perf_hooks');
const N = require('./native.js');

/** Leases timed: one in this many. */
const SAMPLE_EVERY = 16;
/** The longest mean stride between timed leases. */
const MAX_STRIDE = 4096;
/** A busy pool's mean gap between timed leases, ms. */
const SAMPLE_GAP_MS = 1;

class Adaptive {
  /**
   * @param {import('./handles.js').HandleTable} table
   * @param {import('./native.js').NativeBridge} native
   * @param {number} maxSlots
   */
  constructor(table, native, maxSlots) {
    this.table = table;
    this.native = native;
    /** @type {Map<string, number>} server key -> index */
    this.indexOf = new Map();
    /** @type {Map<number, string>} index -> server key */
    this.keyOf = new Map();
    this.next = 0;
    // Keys with no kept socket are forgotten past this many: what peers do
    // (new addresses) must not grow the map (SPEC B9). Rust bounds its own
    // table the same way; indices are never reused, so a forgotten server
    // comes back with no history rather than another's.
    this.limit = 2 * maxSlots + 64;
    /** The stride now counting down, and when the lease that began it was timed. */
    this.stride = SAMPLE_EVERY;
    this.strideAt = 0;
  }

  /**
   * The index naming `socket`'s server to Rust.
   * @param {any} socket
   * @param {string | undefined} serverId the rover's id, if it came from client.rove()
   */
  serverIndex(socket, serverId) {
    let key = serverId;
    if (key === undefined) {
      try {
        key = `${socket.remoteAddress}:${socket.remotePort}`;
      } catch {
        key = 'unknown';
      }
    }
    let index = this.indexOf.get(key);
    if (index === undefined) {
      if (this.indexOf.size >= this.limit) this.prune();
      index = this.next++;
      this.indexOf.set(key, index);
      this.keyOf.set(index, key);
    }
    return index;
  }

  /** Forgets the keys no kept socket is to. */
  prune() {
    const table = this.table;
    const inUse = new Set();
    for (let h = 0; h < table.state.length; h++) {
      if (table.sockets[h] !== undefined) inUse.add(table.serverOf[h]);
    }
    for (const [index, key] of this.keyOf) {
      if (!inUse.has(index)) {
        this.keyOf.delete(index);
        this.indexOf.delete(key);
      }
    }
  }

  /**
   * Handle `h` was just kept for `index`'s server.
   * @param {number} h
   * @param {number} index
   */
  kept(h, index) {
    this.table.serverOf[h] = index;
    this.table.lentAt[h] = 0;
  }

  /**
   * Times the lease of `h` that just began; returns how many leases to count
   * before the next one is timed (the client counts them: its hot path pays
   * one decrement, and nothing when the pool is not adaptive).
   * @param {number} h
   * @returns {number}
   */
  timeLease(h) {
    const now = performance.now();
    // The lease rate over the stride just counted sets the next one's mean:
    // about SAMPLE_GAP_MS apart, never closer than 1 in SAMPLE_EVERY.
    const perGap = (this.stride * SAMPLE_GAP_MS) / Math.max(now - this.strideAt, 1e-3);
    const base = Math.min(Math.max(Math.round(perGap), SAMPLE_EVERY), MAX_STRIDE);
    // 1 to 2 x base - 1 leases to the next: a fixed stride would time the
    // same connection every time under traffic that cycles through the pool
    // (four workers on four connections, say).
    this.stride = 1 + Math.floor(Math.random() * (2 * base - 1));
    this.strideAt = now;
    const table = this.table;
    if (!(table.lentAt[h] > 0)) table.timed++;
    table.lentAt[h] = now;
    return this.stride;
  }

  /**
   * Ends the timed lease of `h`: queues its duration for Rust, with its
   * return (`handOff` false) or without (a hand-off to a waiter: it stays
   * lent). The caller has checked `table.lentAt[h] > 0`.
   * @param {number} h
   * @param {boolean} handOff
   */
  queueSample(h, handOff) {
    const table = this.table;
    const native = this.native;
    const meta = native.meta;
    const t1 = performance.now();
    const us = Math.min(Math.max(Math.round((t1 - table.lentAt[h]) * 1000), 0), N.SAMPLE_MAX_US);
    table.lentAt[h] = 0;
    table.timed--;
    const n = meta[N.META_QUEUE_LEN];
    meta[N.META_QUEUE + n] = ~h;
    meta[N.META_QUEUE + n + 1] = handOff ? ~us : us;
    meta[N.META_QUEUE_LEN] = n + 2;
    meta[N.META_SAMPLES] += 1;
    native.io[N.IO_CLOCK_MS] = t1;
    // Keep room for a two-word sample after every write.
    if (n + 2 > N.QUEUE_CAP - N.QUEUE_SAMPLE_WORDS) native.call(N.flush);
  }

  /**
   * Rust's view of the servers, by their keys.
   * @returns {Array<{ server: string, held: number, leases: number, estimateMs: number | null, weight: number }>}
   */
  servers() {
    const rows = this.native.servers();
    if (rows === null) return [];
    const out = [];
    for (const row of rows) {
      const key = this.keyOf.get(row.server);
      if (key === undefined) continue;
      out.push({
        server: key,
        held: row.held,
        leases: row.leases,
        estimateMs: row.estimateMs ?? null,
        weight: row.weight,
      });
    }
    return out;
  }
}

module.exports = { Adaptive, SAMPLE_EVERY, MAX_STRIDE };
