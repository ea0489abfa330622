'use strict';

/*
 * examples/fleet.js: pieces shared by the demo (examples/demo.js) and the
 * balance test (__test__/balance.test.js): a seeded random generator,
 * clients (a pool, fed by a rover or by connections to random servers) that
 * send requests to examples/callosum-server.js, and a steady request load.
 * Not part of the package's public API.
 */

const { performance } = require('perf_hooks');
const CallosumClient = require('..');
const Rover = require('../lib/rover.js');
const { seededRandom } = require('./seeded-random.js');

/**
 * One client: a pool, and a reader on each socket it lends for the request
 * protocol (`<id>\n` -> `ok <id>\n`). Requests are counted per server port.
 */
class FleetClient {
  /**
   * options.MAX_SLOTS
   * options.requestTimeout  ms (default 2000)
   * options.onResult        (result) => void, result: { ok, port, start, latency, error? }
   */
  constructor(options) {
    this.pool = new CallosumClient({ MAX_SLOTS: options.MAX_SLOTS });
    this.requestTimeout = options.requestTimeout || 2000;
    this.onResult = options.onResult || (() => {});
    this.rover = null;
    this.errors = [];
    this.unreachable = 0;
    this.noConnection = 0;
    /** requests sent and not yet finished */
    this.inFlight = new Set();
    this.pool.on('error', (error) => this.errors.push(error));
    this.pool.on('unreachable', () => this.unreachable++);
    this._nextId = 0;
    this._readers = new WeakMap();
  }

  /** Lets a rover feed the pool (client.rove: the pool's own wiring). */
  rove(servers, options) {
    this.rover = this.pool.rove(servers, options);
    return this.rover;
  }

  /**
   * Fills the pool with `count` connections, each to a server chosen at
   * random, offered with slots 0..count-1 so all are kept: the baseline
   * without Callosum's slots. Resolves when all are offered.
   */
  async connectRandom(servers, count, random) {
    const ids = Object.keys(servers);
    for (let slot = 0; slot < count; slot++) {
      const id = ids[Math.floor(random() * ids.length)];
      const rover = new Rover({ servers: { [id]: servers[id] } });
      const socket = await new Promise((resolve, reject) => {
        rover.once('connection', (_serverSlot, s) => resolve(s));
        rover.once('error', reject);
        rover.once('unreachable', () => reject(new Error(`server ${id} unreachable`)));
        rover.connect();
      });
      this.pool.newConnection(slot, socket);
    }
  }

  /** Sends one request on the lowest-slot idle connection; false if there is none. */
  request() {
    const socket = this.pool.getConnection();
    if (socket === undefined) {
      this.noConnection++;
      return false;
    }
    let reader = this._readers.get(socket);
    if (reader === undefined) reader = this._attach(socket);
    const id = ++this._nextId;
    const req = { id, socket, port: socket.remotePort, start: performance.now(), timer: null, reader };
    req.timer = setTimeout(() => this._finish(req, false, 'timeout'), this.requestTimeout);
    reader.pending = req;
    this.inFlight.add(req);
    socket.write(`${id}\n`);
    return true;
  }

  _attach(socket) {
    const reader = { buffer: '', pending: null };
    this._readers.set(socket, reader);
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (text) => {
      reader.buffer += text;
      let nl;
      while ((nl = reader.buffer.indexOf('\n')) !== -1) {
        const line = reader.buffer.slice(0, nl);
        reader.buffer = reader.buffer.slice(nl + 1);
        const req = reader.pending;
        if (req !== null && line === `ok ${req.id}`) this._finish(req, true);
      }
    });
    const gone = (error) => {
      if (reader.pending !== null) this._finish(reader.pending, false, error ? error.code || error.message : 'closed');
    };
    socket.on('error', gone);
    socket.on('close', () => gone());
    return reader;
  }

  _finish(req, ok, error) {
    if (!this.inFlight.delete(req)) return;
    clearTimeout(req.timer);
    req.reader.pending = null;
    const latency = performance.now() - req.start;
    this.pool.returnConnection(req.socket);
    this.onResult({ ok, port: req.port, start: req.start, latency, error });
  }

  /** Stops the rover, waits (at most `ms`) for requests in flight, closes the pool. */
  async close(ms = 3000) {
    if (this.rover) this.rover.stop();
    const end = Date.now() + ms;
    while (this.inFlight.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    for (const req of [...this.inFlight]) this._finish(req, false, 'shutdown');
    this.pool.close();
  }
}

/**
 * A steady open-loop load: each client sends requests as a Poisson stream of
 * `rate` per second (seeded), on a 5 ms ticker.
 */
class Load {
  constructor(clients, rate, random) {
    this.clients = clients;
    this.rate = rate;
    this.random = random;
    this.timer = null;
    this.sent = 0;
  }

  _gap() {
    return (-Math.log(1 - this.random()) * 1000) / this.rate;
  }

  start() {
    const now = performance.now();
    const next = this.clients.map(() => now + this._gap());
    this.timer = setInterval(() => {
      const t = performance.now();
      for (let i = 0; i < this.clients.length; i++) {
        while (next[i] <= t) {
          this.clients[i].request();
          this.sent++;
          next[i] += this._gap();
        }
      }
    }, 5);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }
}

/** max over mean of the numbers (1 is perfect balance). */
function maxOverMean(values) {
  if (values.length === 0) return NaN;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return mean === 0 ? NaN : Math.max(...values) / mean;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { seededRandom, FleetClient, Load, maxOverMean, percentile, sleep };
