'use strict';

// Adaptive balancing (E6, `new CallosumClient({ adaptive: true })`), its
// JavaScript half. The decisions are the Rust core's (it ranks connections by
// slot x its server's weight); this file gives it what only JavaScript has:
//
// - which server each offered connection is to: the rover's server id for a
//   connection from client.rove(), otherwise the socket's remote
//   address:port, named to Rust by a small integer (io[IO_SERVER]);
// - how long leases last: 1 lease in SAMPLE_EVERY is timed with
//   performance.now() and its return queued as two words (the handle
//   complemented, then the microseconds), which the next crossing applies:
//   no crossing of its own. A clock read costs ~40 ns here, so timing every
//   lease would break the budget of +15 ns a get+return (src/shared.rs has
//   the encoding).
//
// The client drives it only where a lease begins or ends; a pool that is not
// adaptive has none (the client's checks are one compare against null).
// Shared state: collaborator objects, as everywhere in lib/ (lib/handles.js).

const { performance } = require('node:perf_hooks');
const N = require('./native.js');

/** Leases timed: one in this many. */
const SAMPLE_EVERY = 16;

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
    /** Leases until the next timed one. */
    this.countdown = SAMPLE_EVERY;
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
   * A lease of `h` began: one in SAMPLE_EVERY is timed.
   * @param {number} h
   */
  lent(h) {
    if (--this.countdown !== 0) return;
    // 1 to 2 x SAMPLE_EVERY - 1 leases to the next, SAMPLE_EVERY on
    // average: a fixed stride would time the same connection every time
    // under traffic that cycles through the pool (four workers on four
    // connections, say).
    this.countdown = 1 + Math.floor(Math.random() * (2 * SAMPLE_EVERY - 1));
    this.table.lentAt[h] = performance.now();
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

module.exports = { Adaptive, SAMPLE_EVERY };
