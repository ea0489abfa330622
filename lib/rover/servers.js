'use strict';

// What the rover knows of each server: its checked address, its failures in
// a row and when it may be picked again (the back-off), and the attempt whose
// DNS lookup is still out (at most one: docs/rover.md, "One DNS lookup per
// server at a time"). Also the pick of a tick. `rover.servers` itself stays a plain object on the
// Rover, the original's public property, read afresh at every tick (code
// that writes to it directly is heard); this table follows it, keyed by id.

const { validateServerAddress } = require('../validators.js');

/** @typedef {{ host: string, port: number }} ServerAddress */

/** One server as the rover knows it. */
class ServerEntry {
  /**
   * @param {string} id
   * @param {ServerAddress} address
   * @param {unknown} source the object in `rover.servers` this entry was made from
   */
  constructor(id, address, source) {
    this.id = id;
    this.host = address.host;
    this.port = address.port;
    this.source = source;
    /** Failed attempts in a row (unreachable only). */
    this.failures = 0;
    /** When it may be picked again, on the rover's `now` clock; 0: at once. */
    this.retryAt = 0;
    /**
     * The attempt to it whose DNS lookup is still out (a host name only), from
     * the attempt's start until the lookup has answered, even after the
     * attempt itself has ended. A tick starts no attempt while there is one.
     * @type {import('./attempt.js').Attempt | null}
     */
    this.resolving = null;
  }

  /** @returns {ServerAddress} a fresh copy, as events carry it */
  address() {
    return { host: this.host, port: this.port };
  }
}

class ServerTable {
  /** @type {Map<string, ServerEntry>} */
  #entries = new Map();

  /**
   * The entry of server `id` whose `rover.servers` value is `server`: kept
   * while it is the same object or the same address, made afresh (failures
   * 0) for a new address. Throws the coded error of a value that is not a server.
   * @param {string} id @param {unknown} server @returns {ServerEntry}
   */
  entryFor(id, server) {
    const known = this.#entries.get(id);
    if (known !== undefined && known.source === server) return known;
    const address = validateServerAddress(server, id);
    if (known !== undefined && known.host === address.host && known.port === address.port) {
      known.source = server; // the same server under a new object
      return known;
    }
    const entry = new ServerEntry(id, address, server);
    this.#entries.set(id, entry);
    return entry;
  }

  /** @param {string} id @returns {ServerEntry | undefined} the current entry of `id` */
  get(id) {
    return this.#entries.get(id);
  }

  /** @param {string} id @returns {ServerEntry | undefined} the entry forgotten */
  delete(id) {
    const entry = this.#entries.get(id);
    this.#entries.delete(id);
    return entry;
  }

  /** @param {ServerEntry} entry whether it is still the entry of its id (not dropped or replaced) */
  isCurrent(entry) {
    return this.#entries.get(entry.id) === entry;
  }

  /**
   * Forgets the ids deleted from `servers` directly (a cheap test first: more entries than servers).
   * @param {object} servers @param {number} count the number of keys of `servers`
   */
  forgetRemoved(servers, count) {
    if (this.#entries.size <= count) return;
    for (const id of this.#entries.keys()) {
      if (!Object.hasOwn(servers, id)) this.#entries.delete(id);
    }
  }

  /**
   * `{ failures, retryAt }` of a server still in `servers`, or undefined.
   * @param {string} id @param {Record<string, unknown>} servers
   */
  stateOf(id, servers) {
    const e = this.#entries.get(id);
    return e !== undefined && servers[e.id] === e.source ? { failures: e.failures, retryAt: e.retryAt } : undefined;
  }

  /**
   * The ids a tick tries: `count` distinct ids drawn at random from `ids`
   * (`Object.keys(servers)`), leaving out those backing off when `now` is
   * given. Draw i takes index `i + floor(random() * (n - i))` of what is left
   * (a partial Fisher-Yates), so one draw is the original's
   * `floor(random() * n)`.
   * @param {string[]} ids (reordered) @param {Record<string, unknown>} servers
   * @param {number} count @param {() => number} random @param {number | undefined} now
   * @returns {string[]}
   */
  pick(ids, servers, count, random, now) {
    let pool = ids;
    if (now !== undefined) {
      pool = ids.filter((id) => {
        const e = this.#entries.get(id);
        return e === undefined || e.source !== servers[id] || e.retryAt <= now;
      });
    }
    const n = pool.length;
    const k = Math.min(count, n);
    for (let i = 0; i < k; i++) {
      let j = i + Math.floor(random() * (n - i));
      if (!(j >= i)) j = i; // NaN or negative from a bad random()
      if (j >= n) j = n - 1;
      const chosen = pool[j];
      pool[j] = pool[i];
      pool[i] = chosen;
    }
    return pool.slice(0, k);
  }

  /**
   * An unreachable attempt to `entry`: one more failure, and with a back-off
   * (`{ interval, max, now }`) skipped until `now + min(interval * 2^(failures-1), max)`.
   * Only a current entry counts (a dropped or replaced server is gone).
   * @param {ServerEntry} entry @param {{ interval: number, max: number, now: number } | null} backOff
   */
  failed(entry, backOff) {
    if (!this.isCurrent(entry)) return;
    entry.failures += 1;
    if (backOff !== null) {
      entry.retryAt = backOff.now + Math.min(backOff.interval * 2 ** (entry.failures - 1), backOff.max);
    }
  }

  /** A whole slot line from `entry`: its failures and back-off start over. @param {ServerEntry} entry */
  succeeded(entry) {
    if (!this.isCurrent(entry)) return;
    entry.failures = 0;
    entry.retryAt = 0;
  }
}

module.exports = { ServerTable, ServerEntry };
