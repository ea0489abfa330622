'use strict';

// One connection attempt of the rover: connect to one server, read its slot
// line, and settle exactly once with one outcome, which the Rover turns into
// its events. The socket's listeners are bound once, when the attempt is
// made, and removed in one place (#settle), whatever the outcome.
//
// An attempt stays "in flight" for its server (`entry.attempt`) until it has
// settled AND the DNS lookup it started, if any, has answered: the lookup
// runs in libuv's threadpool, where `connectTimeout` cannot cancel it, so the
// rover counts it itself (#lookup wraps the resolver that the socket calls).

const { parseSlotLine } = require('./slot-line.js');

/** @typedef {import('./servers.js').ServerEntry} ServerEntry */
/** @typedef {import('node:net').LookupFunction} LookupFunction */
/** @typedef {(options: { host: string, port: number, lookup: LookupFunction }) => import('node:net').Socket} ConnectFunction */
/**
 * @typedef {{ kind: 'connection', slot: number, socket: import('node:net').Socket }
 *   | { kind: 'unreachable' }
 *   | { kind: 'failed', code: string, message: string, extra?: object }
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
    this.#options = options;
  }

  /** Whether the attempt has settled (its outcome given, its socket handed over or destroyed). */
  get settled() {
    return this.#settled;
  }

  /** Connects; the outcome comes later (or at once, as 'unreachable', if `connect` throws). */
  start() {
    const { entry } = this;
    this.entry.attempt = this;
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

  // The server is free for another attempt once this one has settled and no lookup of its is out.
  #release() {
    if (this.#settled && this.#lookups === 0 && this.entry.attempt === this) this.entry.attempt = null;
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
    if (!this.#settled)
      this.#fail(
        'ERR_CALLOSUM_HANDSHAKE_TIMEOUT',
        `no slot line within ${this.#options.handshakeTimeout} ms of connecting`,
      );
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
    else
      this.#fail('ERR_CALLOSUM_CLOSED_EARLY', `connection failed before the slot line was whole: ${error.message}`, {
        cause: error,
      });
  }

  #onEnd() {
    if (!this.#settled) this.#fail('ERR_CALLOSUM_CLOSED_EARLY', 'connection ended before the slot line was whole');
  }

  #onClose() {
    if (this.#settled) return;
    if (!this.#connected) this.#settle({ kind: 'unreachable' });
    else this.#fail('ERR_CALLOSUM_CLOSED_EARLY', 'connection closed before the slot line was whole');
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
        this.#fail('ERR_CALLOSUM_BAD_SLOT_LINE', `bad slot line: ${result.message}`, { reason: result.reason });
        return;
      }
      // Whole and valid: bytes after it are put back for whoever reads the socket next.
      if (result.used < buffered.length) socket.unshift(buffered.subarray(result.used));
      this.#settle({ kind: 'connection', slot: result.slot, socket });
      return;
    }
  }

  /** @param {string} code @param {string} message @param {object} [extra] */
  #fail(code, message, extra) {
    this.#settle({ kind: 'failed', code, message, extra });
  }
}

function noop() {}

module.exports = { Attempt };
