'use strict';

// The Callosum client rover: every ROVING_INTERVAL it connects to a random
// known server, reads the slot line and emits 'connection' (slot, socket).
// A drop-in for the original `callosum-client-tcp-rover` (its options, its
// `servers`, `intervalId`, `start()` and events behave as there), with
// additions: stop(), time-outs, coded errors, opt-in back-off.
//
// The rules it follows, and where it differs from the original and why, are
// in docs/rover.md; the Rust fleet simulator (simulator/src/rover.rs) follows
// the same rules: change both or neither.

const { EventEmitter } = require('node:events');
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const { codedError, describe, readOptions } = require('./errors.js');
const { channels } = require('./diagnostics.js');

const DEFAULTS = Object.freeze({
  ROVING_INTERVAL: 1000,
  connectTimeout: 2000,
  handshakeTimeout: 2000,
  backOffUnreachable: false,
  maxBackoff: 30000,
});

/** Most digits accepted before the `\r\n`. */
const MAX_SLOT_DIGITS = 20;
/** Longest delay setTimeout/setInterval honour. */
const MAX_TIMER_MS = 2147483647;

const CR = 0x0d;
const LF = 0x0a;

function checkMs(name, value, fallback) {
  // A falsy value (undefined, null, 0) means the default, as in the original.
  if (value === undefined || value === null || value === 0) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw codedError('ERR_INVALID_ARG_TYPE',
      `options.${name} must be a number of milliseconds, received ${describe(value)}`);
  }
  if (!(value > 0) || value > MAX_TIMER_MS) {
    throw codedError('ERR_OUT_OF_RANGE',
      `options.${name} must be > 0 and <= ${MAX_TIMER_MS} ms, received ${describe(value)}`);
  }
  return value;
}

function checkId(id) {
  if (typeof id === 'number' && Number.isFinite(id)) return String(id);
  if (typeof id !== 'string' || id.length === 0) {
    throw codedError('ERR_INVALID_ARG_TYPE',
      `a server id must be a non-empty string (or a finite number), received ${describe(id)}`);
  }
  return id;
}

/** `{ host, port }` checked and normalised, or a coded error thrown. */
function checkServer(id, server) {
  if (server === null || typeof server !== 'object') {
    throw codedError('ERR_INVALID_ARG_TYPE',
      `server ${JSON.stringify(id)} must be an object { host, port }, received ${describe(server)}`);
  }
  let host;
  let port;
  try {
    ({ host, port } = server);
  } catch (err) {
    throw codedError('ERR_INVALID_ARG_TYPE', `server ${JSON.stringify(id)} could not be read (${describe(err)})`, { cause: err });
  }
  if (host === undefined) host = 'localhost'; // what net.connect() assumes, as the original did
  if (typeof host !== 'string') {
    throw codedError('ERR_INVALID_ARG_TYPE',
      `server ${JSON.stringify(id)}: host must be a string, received ${describe(host)}`);
  }
  if (host.length === 0 || /[\s\0]/.test(host)) {
    throw codedError('ERR_INVALID_ARG_VALUE',
      `server ${JSON.stringify(id)}: host must be a non-empty name without spaces, received ${describe(host)}`);
  }
  if (typeof port === 'string') {
    if (!/^[0-9]{1,5}$/.test(port)) {
      throw codedError('ERR_INVALID_ARG_VALUE',
        `server ${JSON.stringify(id)}: port must be a number from 1 to 65535, received ${describe(port)}`);
    }
    port = Number(port);
  }
  if (typeof port !== 'number') {
    throw codedError('ERR_INVALID_ARG_TYPE',
      `server ${JSON.stringify(id)}: port must be a number, received ${describe(port)}`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw codedError('ERR_OUT_OF_RANGE',
      `server ${JSON.stringify(id)}: port must be an integer from 1 to 65535, received ${describe(port)}`);
  }
  return { host, port };
}

// Whether an interval timer is still scheduled (Node marks a cleared one
// _destroyed; where that is unknown it is taken as running).
function timerActive(timer) {
  return timer !== null && timer._destroyed !== true;
}

/**
 * Parses the slot line from the bytes received so far.
 * Returns { slot, used } when whole, null when more bytes are needed, or
 * { reason, message } when the bytes can never make a valid line.
 */
function parseSlotLine(buf) {
  const n = buf.length;
  for (let i = 0; i < n; i++) {
    const b = buf[i];
    if (b >= 0x30 && b <= 0x39) {
      if (i >= MAX_SLOT_DIGITS) {
        return { reason: 'too-long', message: `more than ${MAX_SLOT_DIGITS} digits before \\r\\n` };
      }
      continue;
    }
    if (b === CR) {
      if (i + 1 >= n) return null; // "\r" last: wait for the "\n"
      if (buf[i + 1] !== LF) {
        return { reason: 'not-digits', message: `\\r not followed by \\n (byte 0x${buf[i + 1].toString(16).padStart(2, '0')})` };
      }
      if (i === 0) return { reason: 'empty', message: 'no digit before \\r\\n' };
      const slot = Number(buf.toString('latin1', 0, i));
      if (!Number.isSafeInteger(slot)) {
        return { reason: 'slot-too-large', message: `slot ${buf.toString('latin1', 0, i)} is beyond Number.MAX_SAFE_INTEGER` };
      }
      return { slot, used: i + 2 };
    }
    return { reason: 'not-digits', message: `byte 0x${b.toString(16).padStart(2, '0')} at offset ${i} is not a digit` };
  }
  return null;
}

class Rover extends EventEmitter {
  constructor(options) {
    super();
    options = readOptions('Rover', options, ['ROVING_INTERVAL', 'connectTimeout', 'handshakeTimeout',
      'backOffUnreachable', 'maxBackoff', 'random', 'now', 'servers']);
    this.ROVING_INTERVAL = checkMs('ROVING_INTERVAL', options.ROVING_INTERVAL, DEFAULTS.ROVING_INTERVAL);
    this.connectTimeout = checkMs('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout);
    this.handshakeTimeout = checkMs('handshakeTimeout', options.handshakeTimeout, DEFAULTS.handshakeTimeout);
    this.maxBackoff = checkMs('maxBackoff', options.maxBackoff, DEFAULTS.maxBackoff);
    const backOff = options.backOffUnreachable;
    if (backOff !== undefined && typeof backOff !== 'boolean') {
      throw codedError('ERR_INVALID_ARG_TYPE', `options.backOffUnreachable must be a boolean, received ${describe(backOff)}`);
    }
    this.backOffUnreachable = backOff === true;
    for (const name of ['random', 'now']) {
      if (options[name] !== undefined && typeof options[name] !== 'function') {
        throw codedError('ERR_INVALID_ARG_TYPE', `options.${name} must be a function, received ${describe(options[name])}`);
      }
    }
    this._random = options.random || Math.random;
    this._now = options.now || (() => performance.now());

    // As in the original: the known servers, { id: { host, port } }, a plain
    // object read afresh at every tick (code that writes to it directly is
    // heard). Unlike the original, it is the rover's own copy: the caller's
    // options object is never changed by addServer/dropServer.
    this.servers = {};
    // As in the original: the interval timer, null before start();
    // clearInterval(rover.intervalId) stops the rover.
    this.intervalId = null;
    /** id -> { id, host, port, source, failures, retryAt }: what the rover knows of each server. */
    this._state = new Map();
    /** attempts in progress: { entry, socket, abort() } */
    this._attempts = new Set();

    const servers = options.servers === undefined || options.servers === null ? {} : options.servers;
    if (typeof servers !== 'object') {
      throw codedError('ERR_INVALID_ARG_TYPE', `options.servers must be an object { id: { host, port } }, received ${describe(servers)}`);
    }
    let entries;
    try {
      entries = Object.keys(servers).map((id) => [id, servers[id]]);
    } catch (err) {
      throw codedError('ERR_INVALID_ARG_TYPE', `options.servers could not be read (${describe(err)})`, { cause: err });
    }
    for (const [id, server] of entries) this.addServer(id, server);
  }

  /** Whether the interval timer is running (false after stop() or clearInterval(rover.intervalId)). */
  get running() {
    return timerActive(this.intervalId);
  }

  /** Connection attempts still connecting or handshaking. */
  get pending() {
    return this._attempts.size;
  }

  /** What the rover knows of a server: { failures, retryAt } (retryAt on the `now` clock; 0: eligible), or undefined. */
  serverState(id) {
    const e = this._state.get(String(id));
    return e && this.servers[e.id] === e.source ? { failures: e.failures, retryAt: e.retryAt } : undefined;
  }

  addServer(id, server) {
    id = checkId(id);
    const { host, port } = checkServer(id, server);
    const old = this._state.get(id);
    if (old !== undefined && this.servers[id] === old.source) {
      if (old.host === host && old.port === port) return this; // same address: keeps its state
      this.dropServer(id);
    }
    this.servers[id] = this._entryFor(id, { host, port }).source;
    return this;
  }

  dropServer(id) {
    id = checkId(id);
    delete this.servers[id];
    const entry = this._state.get(id);
    if (entry === undefined) return this;
    this._state.delete(id);
    for (const attempt of this._attempts) {
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
    for (const attempt of this._attempts) attempt.abort();
    return this;
  }

  /** `using rover = ...` / `await using`: stop(). */
  [Symbol.dispose ?? Symbol.for('nodejs.dispose')]() {
    this.stop();
  }

  [Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')]() {
    this.stop();
    return Promise.resolve();
  }

  /**
   * One tick: picks a known server at random and starts an attempt. Called by
   * the timer; public as in the original (reserved for internal use).
   * Returns the id of the server chosen, or undefined.
   */
  connect() {
    const servers = this.servers;
    let ids = Object.keys(servers);
    if (ids.length === 0) {
      this.emit('error', codedError('ERR_CALLOSUM_NO_SERVERS', 'the rover knows no Callosum server to connect to'));
      return undefined;
    }
    if (this._state.size > ids.length) this._forgetRemoved();
    if (this.backOffUnreachable) {
      const now = this._now();
      ids = ids.filter((id) => {
        const e = this._state.get(id);
        return e === undefined || e.source !== servers[id] || e.retryAt <= now;
      });
      if (ids.length === 0) return undefined; // every server backing off
    }
    let i = Math.floor(this._random() * ids.length);
    if (!(i >= 0)) i = 0; // NaN or negative from a bad random()
    if (i >= ids.length) i = ids.length - 1;
    const id = ids[i];
    let entry;
    try {
      entry = this._entryFor(id, servers[id]);
    } catch (error) {
      // Written straight into rover.servers and not a server: said at each pick.
      this.emit('error', error);
      return undefined;
    }
    this._attempt(entry);
    return id;
  }

  // The state of server `id` at address `server` (an entry of this.servers):
  // kept while that entry is the same object, made afresh when it changes.
  _entryFor(id, server) {
    const known = this._state.get(id);
    if (known !== undefined && known.source === server) return known;
    const { host, port } = checkServer(id, server);
    const keep = known !== undefined && known.host === host && known.port === port;
    const entry = {
      id, host, port,
      source: server,
      failures: keep ? known.failures : 0,
      retryAt: keep ? known.retryAt : 0,
    };
    this._state.set(id, entry);
    return entry;
  }

  // Forgets the state of servers deleted from this.servers directly.
  _forgetRemoved() {
    for (const id of this._state.keys()) {
      if (!Object.prototype.hasOwnProperty.call(this.servers, id)) this._state.delete(id);
    }
  }

  _attempt(entry) {
    const rover = this;
    const server = { host: entry.host, port: entry.port };
    const socket = net.connect({ host: entry.host, port: entry.port });
    let connected = false;
    let settled = false;
    let buffered = null;
    let timer = setTimeout(onConnectTimeout, this.connectTimeout);

    const attempt = { entry, socket, abort };
    this._attempts.add(attempt);

    const listeners = [['connect', onConnect], ['readable', onReadable], ['error', onError],
      ['end', onEnd], ['close', onClose]];
    for (const [event, listener] of listeners) socket.on(event, listener);

    function settle() {
      settled = true;
      clearTimeout(timer);
      timer = null;
      rover._attempts.delete(attempt);
      for (const [event, listener] of listeners) socket.removeListener(event, listener);
    }

    function abort() {
      if (settled) return;
      settle();
      socket.on('error', noop); // a late error from the destroyed socket is nobody's
      socket.destroy();
    }

    function unreachable() {
      settle();
      socket.on('error', noop);
      socket.destroy();
      // Only a server still known counts failures (a replaced or dropped one
      // is gone); with backOffUnreachable it is skipped for a while.
      if (rover._state.get(entry.id) === entry) {
        entry.failures += 1;
        if (rover.backOffUnreachable) {
          const delay = Math.min(rover.ROVING_INTERVAL * 2 ** (entry.failures - 1), rover.maxBackoff);
          entry.retryAt = rover._now() + delay;
        }
      }
      if (channels.roverUnreachable.hasSubscribers) {
        channels.roverUnreachable.publish({ rover, serverId: entry.id, server });
      }
      rover.emit('unreachable', entry.id, server);
    }

    function fail(code, message, extra) {
      settle();
      socket.on('error', noop);
      socket.destroy();
      const error = codedError(code,
        `${message} (server ${JSON.stringify(entry.id)} at ${entry.host}:${entry.port})`,
        { serverId: entry.id, server, ...extra });
      if (channels.roverHandshakeError.hasSubscribers) {
        channels.roverHandshakeError.publish({ rover, serverId: entry.id, server, error });
      }
      rover.emit('error', error);
    }

    function onConnectTimeout() {
      timer = null;
      if (!settled) unreachable();
    }

    function onHandshakeTimeout() {
      timer = null;
      if (!settled) {
        fail('ERR_CALLOSUM_HANDSHAKE_TIMEOUT', `no slot line within ${rover.handshakeTimeout} ms of connecting`);
      }
    }

    function onConnect() {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(onHandshakeTimeout, rover.handshakeTimeout);
    }

    function onError(error) {
      if (settled) return;
      if (!connected) unreachable();
      else fail('ERR_CALLOSUM_CLOSED_EARLY', `connection failed before the slot line was whole: ${error.message}`, { cause: error });
    }

    function onEnd() {
      if (!settled) fail('ERR_CALLOSUM_CLOSED_EARLY', 'connection ended before the slot line was whole');
    }

    function onClose() {
      if (settled) return;
      if (!connected) unreachable();
      else fail('ERR_CALLOSUM_CLOSED_EARLY', 'connection closed before the slot line was whole');
    }

    function onReadable() {
      let chunk;
      while (!settled && (chunk = socket.read()) !== null) {
        buffered = buffered === null ? chunk : Buffer.concat([buffered, chunk]);
        const result = parseSlotLine(buffered);
        if (result === null) continue;
        if (result.reason !== undefined) {
          fail('ERR_CALLOSUM_BAD_SLOT_LINE', `bad slot line: ${result.message}`, { reason: result.reason });
          return;
        }
        // Whole and valid.
        if (result.used < buffered.length) socket.unshift(buffered.subarray(result.used));
        settle();
        if (rover._state.get(entry.id) === entry) {
          entry.failures = 0;
          entry.retryAt = 0;
        }
        if (channels.roverConnection.hasSubscribers) {
          channels.roverConnection.publish({ rover, serverId: entry.id, server, slot: result.slot, socket });
        }
        // Nobody listening for it: the socket would be left open, owned by nobody.
        if (!rover.emit('connection', result.slot, socket)) socket.destroy();
        return;
      }
    }
  }
}

function noop() {}

module.exports = Rover;
module.exports.Rover = Rover;
module.exports.parseSlotLine = parseSlotLine;
module.exports.DEFAULTS = DEFAULTS;
module.exports.MAX_SLOT_DIGITS = MAX_SLOT_DIGITS;
