'use strict';

// The Callosum client rover: every ROVING_INTERVAL it connects to `probes`
// random known servers (1 by default), reads each slot line and emits
// 'connection' (slot, socket). A drop-in for the original
// `callosum-client-tcp-rover` (its options, its `servers`, `intervalId`,
// `start()` and events behave as there), with additions: stop(), time-outs,
// coded errors, opt-in back-off, probes, one DNS lookup per server at a time.
//
// The rules it follows, and where it differs from the original and why, are
// in docs/rover.md; the Rust fleet simulator (simulator/src/rover.rs) follows
// the same rules: change both or neither.
//
// The files: this one (the class: options, ticks, events), servers.js (what
// the rover knows of each server: back-off, the lookup in flight; the pick),
// attempt.js (one connection attempt), slot-line.js (the slot-line parser).
// Argument checks are lib/validators.js's, error messages lib/errors.js's.

const { EventEmitter } = require('node:events');
const dns = require('node:dns');
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const { errors } = require('../errors.js');
const { channels } = require('../diagnostics.js');
const { Attempt } = require('./attempt.js');
const { ServerTable } = require('./servers.js');
const { parseSlotLine, MAX_SLOT_DIGITS } = require('./slot-line.js');
const V = require('../validators.js');

/** Every option `new Rover()` reads: the ones `client.rove()` passes on, and `servers`. */
const ROVER_KEYS = Object.freeze([...V.ROVER_OPTION_KEYS, 'servers']);

/** @typedef {import('./attempt.js').Outcome} Outcome */
/** @typedef {import('./attempt.js').ConnectFunction} ConnectFunction */
/** @typedef {import('node:net').LookupFunction} LookupFunction */
/** @typedef {import('./servers.js').ServerEntry} ServerEntry */

const DEFAULTS = Object.freeze({
  ROVING_INTERVAL: 1000,
  connectTimeout: 2000,
  handshakeTimeout: 2000,
  backOffUnreachable: false,
  maxBackoff: 30000,
  probes: 1,
});

/** @type {typeof Symbol.dispose} */
const dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');
/** @type {typeof Symbol.asyncDispose} */
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose');

/** @type {ConnectFunction} */
const defaultConnect = (options) => net.connect(options);
/** @type {LookupFunction} */
const defaultLookup = (hostname, options, callback) => dns.lookup(hostname, options, callback);

/**
 * The rover: offers connections to random known servers, one tick every
 * `ROVING_INTERVAL` ms. Options (docs/rover.md):
 * - `ROVING_INTERVAL` (1000), `connectTimeout` (2000), `handshakeTimeout`
 *   (2000), `maxBackoff` (30000): ms; `backOffUnreachable` (false);
 *   `servers`: `{ id: { host, port } }`, copied;
 * - `probes` (1): servers tried per tick, distinct, at random (capped at the
 *   number of servers);
 * - injected, for tests and special set-ups: `random` (`() => number` in
 *   [0, 1), default `Math.random`), `now` (a monotonic clock in ms for the
 *   back-off, default `performance.now`), `connect` (`({ host, port, lookup })
 *   => net.Socket`, default `net.connect`: it must pass `lookup` on to the
 *   socket, or the one-lookup-per-server bound is lost), `lookup` (the
 *   resolver, shaped as `dns.lookup`, default `dns.lookup`).
 */
class Rover extends EventEmitter {
  /** @type {() => number} */
  #random;
  /** @type {() => number} */
  #now;
  /** @type {ConnectFunction} */
  #connect;
  /** @type {LookupFunction} */
  #lookup;
  #table = new ServerTable();
  /** @type {Set<Attempt>} attempts not settled yet (connecting or handshaking) */
  #attempts = new Set();

  /**
   * @param {{ ROVING_INTERVAL?: number, connectTimeout?: number, handshakeTimeout?: number,
   *   backOffUnreachable?: boolean, maxBackoff?: number, probes?: number, random?: () => number,
   *   now?: () => number, connect?: ConnectFunction, lookup?: LookupFunction,
   *   servers?: Record<string, { host?: string, port: number | string }> }} [options]
   */
  constructor(options) {
    super();
    const o = V.readOptions(options, 'Rover: options', ROVER_KEYS);
    this.ROVING_INTERVAL = V.validateMs(o.ROVING_INTERVAL, 'options.ROVING_INTERVAL', DEFAULTS.ROVING_INTERVAL);
    this.connectTimeout = V.validateMs(o.connectTimeout, 'options.connectTimeout', DEFAULTS.connectTimeout);
    this.handshakeTimeout = V.validateMs(o.handshakeTimeout, 'options.handshakeTimeout', DEFAULTS.handshakeTimeout);
    this.maxBackoff = V.validateMs(o.maxBackoff, 'options.maxBackoff', DEFAULTS.maxBackoff);
    this.backOffUnreachable = V.validateBoolean(o.backOffUnreachable, 'options.backOffUnreachable');
    this.probes = V.validateProbes(o.probes, 'options.probes', DEFAULTS.probes);
    this.#random = V.validateFunction(o.random, 'options.random', Math.random);
    this.#now = V.validateFunction(o.now, 'options.now', () => performance.now());
    this.#connect = V.validateFunction(o.connect, 'options.connect', defaultConnect);
    this.#lookup = V.validateFunction(o.lookup, 'options.lookup', defaultLookup);

    // As in the original: the known servers, { id: { host, port } }, a plain
    // object read afresh at every tick (code that writes to it directly is
    // heard). Unlike the original, it is the rover's own copy: the caller's
    // options object is never changed by addServer/dropServer.
    /** @type {Record<string, { host: string, port: number }>} */
    this.servers = {};
    // As in the original: the interval timer, null before start();
    // clearInterval(rover.intervalId) stops the rover.
    /** @type {NodeJS.Timeout | null} */
    this.intervalId = null;

    for (const [id, server] of V.validateServers(o.servers, 'options.servers')) this.addServer(id, server);
  }

  /** Whether the interval timer is running (false after stop() or clearInterval(rover.intervalId)). */
  get running() {
    // Node marks a cleared timer _destroyed, the only trace clearInterval()
    // leaves; where that is unknown it is taken as running.
    const timer = /** @type {{ _destroyed?: boolean } | null} */ (this.intervalId);
    return timer !== null && timer._destroyed !== true;
  }

  /** Connection attempts still connecting or handshaking. */
  get pending() {
    return this.#attempts.size;
  }

  /**
   * What the rover knows of a server: `{ failures, retryAt }` (retryAt on the `now` clock; 0: eligible), or undefined.
   * @param {string | number} id
   */
  serverState(id) {
    return this.#table.stateOf(String(id), this.servers);
  }

  /**
   * Adds a server, or replaces one with a new address (the same address keeps its state).
   * @param {string | number} id @param {unknown} server `{ host, port }` (checked: a missing host is 'localhost')
   */
  addServer(id, server) {
    const key = V.validateServerId(id);
    const { host, port } = V.validateServerAddress(server, key);
    const old = this.#table.get(key);
    if (old !== undefined && this.servers[key] === old.source) {
      if (old.host === host && old.port === port) return this; // same address: keeps its state
      this.dropServer(key);
    }
    const address = { host, port };
    this.#table.entryFor(key, address);
    this.servers[key] = address;
    return this;
  }

  /** Forgets a server and silently abandons the attempts to it in progress. @param {string | number} id */
  dropServer(id) {
    const key = V.validateServerId(id);
    delete this.servers[key];
    const entry = this.#table.delete(key);
    if (entry === undefined) return this;
    for (const attempt of this.#attempts) {
      if (attempt.entry === entry) attempt.abort();
    }
    return this;
  }

  /**
   * As the original: attempts a connection now, then every ROVING_INTERVAL.
   * On a running rover it starts the interval over (and attempts now).
   */
  start() {
    if (this.intervalId !== null) clearInterval(this.intervalId);
    this.intervalId = setInterval(() => this.connect(), this.ROVING_INTERVAL);
    // Unlike the original, the timer does not keep the process alive.
    this.intervalId.unref();
    this.connect();
    return this;
  }

  /** Stops the timer and destroys, silently, every socket still connecting or handshaking. */
  stop() {
    if (this.intervalId !== null) {
      clearInterval(this.intervalId);
      this.intervalId = null;
    }
    for (const attempt of this.#attempts) attempt.abort();
    return this;
  }

  /** `using rover = ...`: stop(). */
  [dispose]() {
    this.stop();
  }

  /** `await using rover = ...`: stop(). */
  [asyncDispose]() {
    this.stop();
    return Promise.resolve();
  }

  /**
   * One tick: picks `probes` distinct known servers at random and starts an
   * attempt to each, except to a server whose DNS lookup is still out.
   * Called by the timer; public as in the original (reserved for internal
   * use). Returns the id of the first server an attempt was started to, or
   * undefined when none was.
   * @returns {string | undefined}
   */
  connect() {
    const servers = this.servers;
    const ids = Object.keys(servers);
    if (ids.length === 0) {
      this.emit('error', errors.ERR_CALLOSUM_NO_SERVERS());
      return undefined;
    }
    this.#table.forgetRemoved(servers, ids.length);
    const now = this.backOffUnreachable ? this.#now() : undefined;
    let first;
    for (const id of this.#table.pick(ids, servers, this.probes, this.#random, now)) {
      let entry;
      try {
        entry = this.#table.entryFor(id, servers[id]);
      } catch (error) {
        // Written straight into rover.servers and not a server: said at each pick.
        this.emit('error', error);
        continue;
      }
      // One DNS lookup per server at a time: a lookup cannot be cancelled (docs/rover.md).
      if (entry.resolving !== null) continue;
      first ??= id;
      const attempt = new Attempt(entry, {
        connect: this.#connect,
        lookup: this.#lookup,
        connectTimeout: this.connectTimeout,
        handshakeTimeout: this.handshakeTimeout,
        settled: (done, outcome) => this.#settled(done, outcome),
      });
      this.#attempts.add(attempt);
      attempt.start();
    }
    return first;
  }

  /** @param {Attempt} attempt @param {Outcome} outcome */
  #settled(attempt, outcome) {
    this.#attempts.delete(attempt);
    if (outcome.kind === 'aborted') return;
    const { entry, server } = attempt;
    const serverId = entry.id;
    if (outcome.kind === 'unreachable') {
      // Retried whenever picked again; with backOffUnreachable skipped for a while.
      const backOff = this.backOffUnreachable
        ? { interval: this.ROVING_INTERVAL, max: this.maxBackoff, now: this.#now() }
        : null;
      this.#table.failed(entry, backOff);
      if (channels.roverUnreachable.hasSubscribers) {
        channels.roverUnreachable.publish({ rover: this, serverId, server });
      }
      this.emit('unreachable', serverId, server);
    } else if (outcome.kind === 'failed') {
      const { error } = outcome;
      if (channels.roverHandshakeError.hasSubscribers) {
        channels.roverHandshakeError.publish({ rover: this, serverId, server, error });
      }
      this.emit('error', error);
    } else {
      const { slot, socket } = outcome;
      this.#table.succeeded(entry);
      if (channels.roverConnection.hasSubscribers) {
        channels.roverConnection.publish({ rover: this, serverId, server, slot, socket });
      }
      // Nobody listening for it: the socket would be left open, owned by nobody.
      // The server's id comes third (the original emits two arguments): an
      // adaptive pool knows a connection's server by it.
      if (!this.emit('connection', slot, socket, serverId)) socket.destroy();
    }
  }
}

module.exports = Rover;
module.exports.Rover = Rover;
module.exports.parseSlotLine = parseSlotLine;
module.exports.DEFAULTS = DEFAULTS;
module.exports.MAX_SLOT_DIGITS = MAX_SLOT_DIGITS;
