'use strict';

/*
 * lib/rover.js: the Callosum client rover.
 *
 * A rover keeps offering connections to a pool. API compatible with the
 * original `callosum-client-tcp-rover`:
 *
 *     const rover = new Rover({ ROVING_INTERVAL: 1000, servers: { id: { host, port } } });
 *     rover.on('connection', (slot, socket) => client.newConnection(slot, socket));
 *     rover.on('unreachable', (id, server) => {});
 *     rover.on('error', (error) => {});   // REQUIRED, see below
 *     rover.start();
 *     rover.addServer(id, { host, port }); rover.dropServer(id); rover.stop();
 *
 * THE RULES (the Rust fleet simulator, simulator/src/rover.rs,
 * follows the same ones; change both or neither):
 *
 * Options
 *   ROVING_INTERVAL   ms between attempts, default 1000 (a falsy value means
 *                     the default, as in the original)
 *   servers           { id: { host, port } }, default {}
 *   connectTimeout    ms from the attempt to the TCP connect, default 2000
 *   handshakeTimeout  ms from the TCP connect to a whole slot line, default 2000
 *   maxBackoff        ms, ceiling of the back-off, default 30000
 *   random            function returning a number in [0, 1), default
 *                     Math.random (pass a seeded one for repeatable runs)
 *   now               function returning a monotonic time in ms, default
 *                     performance.now (a test hook for the back-off clock)
 *
 * Every tick (every ROVING_INTERVAL ms on a timer that is unref()ed, so it
 * never keeps the process alive; start() runs the first tick on the next turn
 * of the event loop, as the original ran one at once):
 *   1. No servers known: emit 'error' with code ERR_CALLOSUM_NO_SERVERS.
 *   2. Otherwise pick uniformly at random one server among those not backing
 *      off (index floor(random() * n) in the order servers became known).
 *      Every server backing off: the tick does nothing.
 *   3. Connect. A connect failure, or no connect within connectTimeout, emits
 *      'unreachable' (id, { host, port }) and the server backs off: it is not
 *      chosen again until now + min(ROVING_INTERVAL * 2^(failures-1),
 *      maxBackoff), failures counting the connect failures in a row.
 *   4. Read the slot line: ASCII digits then `\r\n`, 1 to 20 digits before
 *      the `\r\n`, its value a safe integer. It may arrive split over any
 *      number of chunks; bytes after the `\r\n` are put back with
 *      socket.unshift() for whoever reads the socket next. The rover reads in
 *      paused mode ('readable' + read()), so the socket is handed over neither
 *      flowing nor explicitly paused: a 'data' listener added later starts it.
 *   5. A whole, valid line: the server's failures are reset to 0, the rover
 *      removes every listener it added, and emits 'connection' (slot, socket)
 *      with slot a Number. The socket is then the listener's: the rover keeps
 *      no reference to it (with no 'connection' listener it is destroyed).
 *   6. A bad line (a byte that is not a digit, no digit, more than 20 digits,
 *      a slot beyond Number.MAX_SAFE_INTEGER: code ERR_CALLOSUM_BAD_SLOT_LINE,
 *      detected as soon as the bytes show it), the connection ending or
 *      failing before the line is whole (ERR_CALLOSUM_CLOSED_EARLY), or no
 *      whole line within handshakeTimeout of the connect
 *      (ERR_CALLOSUM_HANDSHAKE_TIMEOUT): the socket is destroyed and 'error'
 *      is emitted with an Error carrying a string `code`, `serverId` and
 *      `server`. These do not make the server back off.
 *   Attempts may overlap (a slow handshake does not delay the next tick).
 *   (The Rust fleet simulator differs here on purpose: it runs thousands of
 *   clients in one process, so each makes one attempt at a time and a slow
 *   one delays its next tick instead of piling up sockets.)
 *
 * stop() clears the timer and destroys, silently, every socket still
 * connecting or handshaking. start() and stop() are idempotent; a stopped
 * rover may be started again. dropServer(id) forgets the server and silently
 * abandons the attempts to it still in progress. addServer(id, server) with a
 * known id and the same address keeps its back-off state; with a new address
 * it replaces the server (as dropServer then addServer).
 *
 * 'error' events: like any EventEmitter, a rover with no 'error' listener
 * throws the error, here from a timer or socket callback, which crashes the
 * process. Always listen for 'error' (client.rove() forwards them to the
 * client's own 'error' event).
 *
 * Setup calls (constructor, addServer, dropServer) throw a TypeError or
 * RangeError with a `code` for bad arguments: they run at setup, not from
 * I/O callbacks.
 */

const { EventEmitter } = require('events');
const net = require('net');
const { performance } = require('perf_hooks');

const DEFAULTS = Object.freeze({
  ROVING_INTERVAL: 1000,
  connectTimeout: 2000,
  handshakeTimeout: 2000,
  maxBackoff: 30000,
});

/** Most digits accepted before the `\r\n`. */
const MAX_SLOT_DIGITS = 20;
/** Longest delay setTimeout/setInterval honour. */
const MAX_TIMER_MS = 2147483647;

const CR = 0x0d;
const LF = 0x0a;

function codedError(Ctor, code, message, extra) {
  const error = new Ctor(message);
  error.code = code;
  if (extra) Object.assign(error, extra);
  return error;
}

function describe(value) {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? s.slice(0, 80) + '...' : s;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function checkMs(name, value, fallback) {
  // A falsy value (undefined, null, 0) means the default, as in the original.
  if (value === undefined || value === null || value === 0) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw codedError(TypeError, 'ERR_CALLOSUM_BAD_OPTION',
      `options.${name} must be a number of milliseconds, got ${describe(value)}`);
  }
  if (!(value > 0) || value > MAX_TIMER_MS) {
    throw codedError(RangeError, 'ERR_CALLOSUM_BAD_OPTION',
      `options.${name} must be > 0 and <= ${MAX_TIMER_MS} ms, got ${describe(value)}`);
  }
  return value;
}

function checkId(id) {
  if (typeof id === 'number' && Number.isFinite(id)) return String(id);
  if (typeof id !== 'string' || id.length === 0) {
    throw codedError(TypeError, 'ERR_CALLOSUM_BAD_SERVER_ID',
      `a server id must be a non-empty string (or a finite number), got ${describe(id)}`);
  }
  return id;
}

function checkServer(id, server) {
  if (server === null || typeof server !== 'object') {
    throw codedError(TypeError, 'ERR_CALLOSUM_BAD_SERVER',
      `server ${JSON.stringify(id)} must be an object { host, port }, got ${describe(server)}`);
  }
  let { host, port } = server;
  if (host === undefined) host = 'localhost'; // what net.connect() assumes, as the original did
  if (typeof host !== 'string' || host.length === 0 || /[\s\0]/.test(host)) {
    throw codedError(TypeError, 'ERR_CALLOSUM_BAD_SERVER',
      `server ${JSON.stringify(id)}: host must be a non-empty string, got ${describe(host)}`);
  }
  if (typeof port === 'string' && /^[0-9]{1,5}$/.test(port)) port = Number(port);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw codedError(TypeError, 'ERR_CALLOSUM_BAD_SERVER',
      `server ${JSON.stringify(id)}: port must be an integer from 1 to 65535, got ${describe(port)}`);
  }
  return { host, port };
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
    if (options === undefined || options === null) options = {};
    if (typeof options !== 'object') {
      throw codedError(TypeError, 'ERR_CALLOSUM_BAD_OPTION', `options must be an object, got ${describe(options)}`);
    }
    this.ROVING_INTERVAL = checkMs('ROVING_INTERVAL', options.ROVING_INTERVAL, DEFAULTS.ROVING_INTERVAL);
    this.connectTimeout = checkMs('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout);
    this.handshakeTimeout = checkMs('handshakeTimeout', options.handshakeTimeout, DEFAULTS.handshakeTimeout);
    this.maxBackoff = checkMs('maxBackoff', options.maxBackoff, DEFAULTS.maxBackoff);
    for (const name of ['random', 'now']) {
      if (options[name] !== undefined && typeof options[name] !== 'function') {
        throw codedError(TypeError, 'ERR_CALLOSUM_BAD_OPTION', `options.${name} must be a function, got ${describe(options[name])}`);
      }
    }
    this._random = options.random || Math.random;
    this._now = options.now || (() => performance.now());

    /** id -> entry { id, host, port, failures, retryAt } in the order they became known. */
    this._servers = new Map();
    /** attempts in progress: { entry, socket, abort() } */
    this._attempts = new Set();
    this._interval = null;
    this._immediate = null;

    const servers = options.servers === undefined || options.servers === null ? {} : options.servers;
    if (typeof servers !== 'object') {
      throw codedError(TypeError, 'ERR_CALLOSUM_BAD_OPTION', `options.servers must be an object { id: { host, port } }, got ${describe(servers)}`);
    }
    for (const id of Object.keys(servers)) this.addServer(id, servers[id]);
  }

  /** A snapshot { id: { host, port } } of the known servers. */
  get servers() {
    const out = {};
    for (const e of this._servers.values()) out[e.id] = { host: e.host, port: e.port };
    return out;
  }

  /** Whether the timer is running. */
  get running() {
    return this._interval !== null;
  }

  /** Connection attempts still connecting or handshaking. */
  get pending() {
    return this._attempts.size;
  }

  /** Back-off state of a server: { failures, retryAt } (retryAt on the `now` clock; 0: eligible), or undefined. */
  serverState(id) {
    const e = this._servers.get(String(id));
    return e && { failures: e.failures, retryAt: e.retryAt };
  }

  addServer(id, server) {
    id = checkId(id);
    const { host, port } = checkServer(id, server);
    const old = this._servers.get(id);
    if (old) {
      if (old.host === host && old.port === port) return this;
      this.dropServer(id);
    }
    this._servers.set(id, { id, host, port, failures: 0, retryAt: 0 });
    return this;
  }

  dropServer(id) {
    id = checkId(id);
    const entry = this._servers.get(id);
    if (!entry) return this;
    this._servers.delete(id);
    for (const attempt of this._attempts) {
      if (attempt.entry === entry) attempt.abort();
    }
    return this;
  }

  start() {
    if (this._interval !== null) return this;
    this._interval = setInterval(() => this.connect(), this.ROVING_INTERVAL);
    this._interval.unref();
    this._immediate = setImmediate(() => {
      this._immediate = null;
      this.connect();
    });
    this._immediate.unref();
    return this;
  }

  stop() {
    if (this._interval !== null) {
      clearInterval(this._interval);
      this._interval = null;
    }
    if (this._immediate !== null) {
      clearImmediate(this._immediate);
      this._immediate = null;
    }
    for (const attempt of this._attempts) attempt.abort();
    return this;
  }

  /**
   * One tick: picks a server and starts an attempt. Called by the timer;
   * public as in the original (reserved for internal use). Returns the id
   * of the server chosen, or undefined.
   */
  connect() {
    if (this._servers.size === 0) {
      this.emit('error', codedError(Error, 'ERR_CALLOSUM_NO_SERVERS', 'the rover knows no Callosum server to connect to'));
      return undefined;
    }
    const now = this._now();
    const eligible = [];
    for (const e of this._servers.values()) {
      if (e.retryAt <= now) eligible.push(e);
    }
    if (eligible.length === 0) return undefined;
    let i = Math.floor(this._random() * eligible.length);
    if (!(i >= 0)) i = 0; // NaN or negative from a bad random()
    if (i >= eligible.length) i = eligible.length - 1;
    const entry = eligible[i];
    this._attempt(entry);
    return entry.id;
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
      // Only a server still known backs off (a replaced or dropped one is gone).
      if (rover._servers.get(entry.id) === entry) {
        entry.failures += 1;
        const delay = Math.min(rover.ROVING_INTERVAL * 2 ** (entry.failures - 1), rover.maxBackoff);
        entry.retryAt = rover._now() + delay;
      }
      rover.emit('unreachable', entry.id, server);
    }

    function fail(code, message, extra) {
      settle();
      socket.on('error', noop);
      socket.destroy();
      rover.emit('error', codedError(Error, code,
        `${message} (server ${JSON.stringify(entry.id)} at ${entry.host}:${entry.port})`,
        { serverId: entry.id, server, ...extra }));
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
        if (rover._servers.get(entry.id) === entry) {
          entry.failures = 0;
          entry.retryAt = 0;
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
