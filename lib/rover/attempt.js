'use strict';

// One connection attempt of the rover: connect to one server, read its slot
// line, and settle exactly once with one outcome, which the Rover turns into
// its events. The socket's listeners are bound once, when the attempt is
// made, and removed in one place (#settle), whatever the outcome.
//
// An attempt to a host name holds its server (`entry.resolving`) from its
// start until its DNS lookup has answered, even if the attempt has ended by
// then: the lookup runs in libuv's threadpool, where `connectTimeout` cannot
// cancel it, so the rover counts it itself (#lookup wraps the resolver the
// socket calls) and starts no other attempt to that server meanwhile.

const net = require('node:net');
const { errors } = require('../errors.js');
const { parseSlotLine } = require('./slot-line.js');

/** @typedef {import('./servers.js').ServerEntry} ServerEntry */
/** @typedef {import('node:net').LookupFunction} LookupFunction */
/** @typedef {(options: { host: string, port: number, lookup: LookupFunction }) => import('node:net').Socket} ConnectFunction */
/**
 * @typedef {{ kind: 'connection', slot: number, socket: import('node:net').Socket }
 *   | { kind: 'unreachable' }
 *   | { kind: 'failed', error: Error }
 *   | { kind: 'aborted' }} Outcome
 */
/**
 * @typedef {object} AttemptOptions
 * @property {ConnectFunction} connect
 * @property {LookupFunction} lookup the resolver the socket is given (counted)
 * @property {number} connectTimeout
 * @property {number} handshakeTimeout
 * @property {(attempt: Attempt, outcome: Outcome) => void} settled called once, after the listeners are gone
 */

class Attempt {
  /** @type {ServerEntry} */
  entry;
  /** The server's address when the attempt was made, as its events and errors carry it. */
  server;
  /** @type {AttemptOptions} */
  #options;
  /** @type {import('node:net').Socket | null} */
  #socket = null;
  /** @type {NodeJS.Timeout | null} */
  #timer = null;
  #connected = false;
  #settled = false;
  /** Lookups started by the socket and not answered yet. */
  #lookups = 0;
  /** Whether a lookup has answered. */
  #resolved = false;
  /** @type {Buffer | null} the slot line's bytes so far */
  #buffered = null;

  /** @type {Array<[string, (...args: any[]) => void]>} */
  #listeners = [
    ['connect', () => this.#onConnect()],
    ['readable', () => this.#onReadable()],
    ['error', (/** @type {Error} */ error) => this.#onError(error)],
    ['end', () => this.#onEnd()],
    ['close', () => this.#onClose()],
  ];

  /** @param {ServerEntry} entry @param {AttemptOptions} options */
  constructor(entry, options) {
    this.entry = entry;
    this.server = entry.address();
    this.#options = options;
  }

  /** Whether the attempt has settled (its outcome given, its socket handed over or destroyed). */
  get settled() {
    return this.#settled;
  }

  /** Connects; the outcome comes later (or at once, as 'unreachable', if `connect` throws). */
  start() {
    const { entry } = this;
    // A host name: the socket is about to look it up (an IP address needs no lookup).
    if (net.isIP(entry.host) === 0 && entry.resolving === null) entry.resolving = this;
    this.#timer = setTimeout(() => this.#onConnectTimeout(), this.#options.connectTimeout);
    try {
      const socket = this.#options.connect({ host: entry.host, port: entry.port, lookup: this.#lookup });
      this.#socket = socket;
      for (const [event, listener] of this.#listeners) socket.on(event, listener);
    } catch {
      // A connect function that throws, or returns no socket: nothing to reach the server with.
      this.#settle({ kind: 'unreachable' });
    }
  }

  /** Stops the attempt silently: its socket is destroyed, nothing is reported. */
  abort() {
    if (!this.#settled) this.#settle({ kind: 'aborted' });
  }

  /** @param {Outcome} outcome */
  #settle(outcome) {
    this.#settled = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const socket = this.#socket;
    if (socket !== null) {
      for (const [event, listener] of this.#listeners) socket.removeListener(event, listener);
      if (outcome.kind !== 'connection') {
        socket.on('error', noop); // a late error from the destroyed socket is nobody's
        socket.destroy();
      }
    }
    this.#socket = null;
    this.#buffered = null;
    this.#release();
    this.#options.settled(this, outcome);
  }

  // The server is free for another attempt once no lookup of this one is out: one has answered, or
  // the attempt ended without starting one.
  #release() {
    if (this.entry.resolving === this && this.#lookups === 0 && (this.#resolved || this.#settled)) {
      this.entry.resolving = null;
    }
  }

  /**
   * The resolver handed to the socket: the rover's own (`dns.lookup` by default), counted, so that a
   * lookup outliving the attempt keeps the server busy until it answers.
   * @type {LookupFunction}
   */
  #lookup = (hostname, options, callback) => {
    this.#lookups += 1;
    let answered = false;
    /** @type {typeof callback} */
    const answer = (...args) => {
      if (answered) return;
      answered = true;
      this.#lookups -= 1;
      this.#resolved = true;
      this.#release();
      callback(...args);
    };
    try {
      this.#options.lookup(hostname, options, answer);
    } catch (error) {
      process.nextTick(answer, error);
    }
  };

  #onConnectTimeout() {
    this.#timer = null;
    if (!this.#settled) this.#settle({ kind: 'unreachable' });
  }

  #onHandshakeTimeout() {
    this.#timer = null;
    if (this.#settled) return;
    this.#fail(errors.ERR_CALLOSUM_HANDSHAKE_TIMEOUT(this.#options.handshakeTimeout, ...this.#about()));
  }

  #onConnect() {
    this.#connected = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#onHandshakeTimeout(), this.#options.handshakeTimeout);
  }

  /** @param {Error} error */
  #onError(error) {
    if (this.#settled) return;
    if (!this.#connected) this.#settle({ kind: 'unreachable' });
    else this.#fail(errors.ERR_CALLOSUM_CLOSED_EARLY('failed', ...this.#about(), error));
  }

  #onEnd() {
    if (!this.#settled) this.#fail(errors.ERR_CALLOSUM_CLOSED_EARLY('ended', ...this.#about()));
  }

  #onClose() {
    if (this.#settled) return;
    if (!this.#connected) this.#settle({ kind: 'unreachable' });
    else this.#fail(errors.ERR_CALLOSUM_CLOSED_EARLY('closed', ...this.#about()));
  }

  #onReadable() {
    const socket = /** @type {import('node:net').Socket} */ (this.#socket);
    let chunk;
    while (!this.#settled && (chunk = socket.read()) !== null) {
      const buffered = this.#buffered === null ? chunk : Buffer.concat([this.#buffered, chunk]);
      this.#buffered = buffered;
      const result = parseSlotLine(buffered);
      if (result === null) continue;
      if ('reason' in result) {
        this.#fail(errors.ERR_CALLOSUM_BAD_SLOT_LINE(result.reason, result.message, ...this.#about()));
        return;
      }
      // Whole and valid: bytes after it are put back for whoever reads the socket next.
      if (result.used < buffered.length) socket.unshift(buffered.subarray(result.used));
      this.#settle({ kind: 'connection', slot: result.slot, socket });
      return;
    }
  }

  /** @param {Error} error the handshake's fault (the socket is destroyed) */
  #fail(error) {
    this.#settle({ kind: 'failed', error });
  }

  /** @returns {[string, { host: string, port: number }]} the server an error is about: (serverId, server) */
  #about() {
    return [this.entry.id, this.server];
  }
}

function noop() {}

module.exports = { Attempt };
