'use strict';

/*
 * examples/callosum-server.js: a small Callosum server, for the tests and the
 * demo. Not part of the package's public API.
 *
 * Each accepted connection gets the lowest free slot (0, 1, 2, ...) and is
 * sent `${slot}\r\n` at once; the slot is freed when the connection closes.
 * Then it serves a trivial request protocol: every line the client sends
 * (`<id>\n`) is a request, answered with `ok <id>\n` after `delay` ms of
 * "work". At most `workers` requests are worked on at a time (per server, all
 * connections together); the others wait in a FIFO queue, so a server that
 * gets more than its share of requests answers them later.
 *
 *     const { CallosumServer } = require('./callosum-server');
 *     const server = new CallosumServer({ delay: 5, workers: 4 });
 *     const { host, port } = await server.listen();
 *     server.connections; server.requests; server.inFlight;
 *     await server.close();   // stops listening, destroys every socket
 */

const net = require('net');
const { EventEmitter } = require('events');

/** Lowest-free-slot allocator: `next` plus a binary min-heap of freed slots below it. */
class Slots {
  constructor() {
    this.next = 0;
    this.free = [];
  }

  take() {
    const h = this.free;
    if (h.length === 0) return this.next++;
    const top = h[0];
    const last = h.pop();
    const n = h.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const c = l + 1 < n && h[l + 1] < h[l] ? l + 1 : l;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }

  give(slot) {
    const h = this.free;
    let i = h.length;
    h.push(slot);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p] <= slot) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = slot;
  }
}

class CallosumServer extends EventEmitter {
  /**
   * options.delay    ms of work per request (default 5)
   * options.workers  requests worked on at once (default Infinity)
   * options.host     default '127.0.0.1'
   * options.name     a label, for logs
   */
  constructor(options = {}) {
    super();
    this.name = options.name || 'callosum';
    this.host = options.host || '127.0.0.1';
    this.delay = options.delay === undefined ? 5 : options.delay;
    this.workers = options.workers === undefined ? Infinity : options.workers;
    this.port = undefined;
    /** live connections */
    this.connections = 0;
    /** connections ever accepted */
    this.accepted = 0;
    /** requests received */
    this.requests = 0;
    /** requests answered */
    this.answered = 0;
    /** requests received and not yet answered (queued or worked on) */
    this.inFlight = 0;
    this._slots = new Slots();
    this._sockets = new Set();
    this._queue = [];
    this._queueHead = 0;
    this._working = 0;
    this._closed = false;
    this._server = net.createServer((socket) => this._onConnection(socket));
    this._server.on('error', (error) => this.emit('error', error));
  }

  /** Resolves with { host, port } once listening (port 0: the system picks). */
  listen(port = 0) {
    return new Promise((resolve, reject) => {
      this._server.once('error', reject);
      this._server.listen({ host: this.host, port }, () => {
        this._server.removeListener('error', reject);
        this.port = this._server.address().port;
        resolve({ host: this.host, port: this.port });
      });
    });
  }

  get address() {
    return { host: this.host, port: this.port };
  }

  /** The slots held now, ascending. */
  get slots() {
    return [...this._sockets].map((s) => s._callosumSlot).sort((a, b) => a - b);
  }

  _onConnection(socket) {
    if (this._closed) {
      socket.destroy();
      return;
    }
    const slot = this._slots.take();
    socket._callosumSlot = slot;
    socket._callosumPending = 0;
    this._sockets.add(socket);
    this.connections++;
    this.accepted++;
    socket.setNoDelay(true);
    socket.on('error', () => {}); // a reset by the client is routine here
    socket.once('close', () => {
      this._sockets.delete(socket);
      this.connections--;
      this._slots.give(slot);
      // Requests of a dead connection are dropped (queued or worked on).
      this.inFlight -= socket._callosumPending;
      socket._callosumPending = 0;
      this.emit('disconnect', slot);
    });
    socket.write(`${slot}\r\n`);
    let partial = '';
    socket.setEncoding('latin1');
    socket.on('data', (text) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop();
      if (partial.length > 1024) {
        socket.destroy();
        return;
      }
      for (const line of lines) this._request(socket, line.trim());
    });
    this.emit('connect', slot);
  }

  _request(socket, id) {
    this.requests++;
    this.inFlight++;
    socket._callosumPending++;
    this._queue.push({ socket, id });
    this._pump();
  }

  _pump() {
    while (this._working < this.workers && this._queueHead < this._queue.length) {
      const job = this._queue[this._queueHead];
      this._queue[this._queueHead++] = undefined;
      if (this._queueHead > 1024 && this._queueHead * 2 > this._queue.length) {
        this._queue = this._queue.slice(this._queueHead);
        this._queueHead = 0;
      }
      if (job.socket.destroyed) continue; // its in-flight count went with the connection
      this._working++;
      setTimeout(() => {
        this._working--;
        if (!job.socket.destroyed) {
          job.socket._callosumPending--;
          this.inFlight--;
          this.answered++;
          job.socket.write(`ok ${job.id}\n`);
        }
        this._pump();
      }, this.delay);
    }
  }

  /** Stops listening and destroys every connection (a crash, seen from the clients). */
  close() {
    this._closed = true;
    for (const socket of this._sockets) socket.destroy();
    return new Promise((resolve) => {
      if (!this._server.listening) return resolve();
      this._server.close(() => resolve());
    });
  }
}

function createCallosumServer(options) {
  return new CallosumServer(options);
}

module.exports = createCallosumServer;
module.exports.createCallosumServer = createCallosumServer;
module.exports.CallosumServer = CallosumServer;
module.exports.Slots = Slots;

if (require.main === module) {
  // node examples/callosum-server.js [port] [delay-ms]
  const server = new CallosumServer({ delay: Number(process.argv[3] || 5) });
  server.listen(Number(process.argv[2] || 0)).then(({ host, port }) => {
    console.log(`Callosum server on ${host}:${port}`);
  });
}
