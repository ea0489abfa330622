'use strict';

// A Callosum server that misbehaves on demand, for the soak.
//
// Protocol as in examples/callosum-server.js: each accepted connection gets the
// lowest free slot, is sent `<slot>\r\n` first, and the slot is freed when the
// connection ends; every line `<id>\n` the client sends is answered `ok <id>\n`.
//
// Faults: reset, half-close (end() on an allowHalfOpen server), close (FIN),
// goodbye (a last `#bye <id>\n`, then a close), kill and restart on the same
// port, stall (answers held back), and plans for the next accepted
// connections: a split slot line, a bad slot line, no line, a close before
// the line is whole, bytes after the line (`#hi <id>\n`, with it or a little
// later), optionally followed later by a close.
//
// What the soak checks against: every connection has a record in a registry
// shared by all servers, keyed by the port pair (server port, client port)
// that the client socket also sees (remotePort, localPort). The record says
// when the server closed its end, and `deadAt`: a time by which any client
// event loop that reads the socket has seen the close (200 ms, then a
// setImmediate, so at least one poll phase ran after the close).

const net = require('node:net');
const { EventEmitter } = require('node:events');

const CONFIRM_MS = 200;
// Flood: one shared 64 KiB chunk of 1 KiB lines (`#flood ...\n`), written
// again and again (a Buffer write is not copied: the server's own memory stays
// one chunk whatever it streams). A pump writes at most FLOOD_BURST chunks,
// then waits for 'drain' or the next turn of the loop.
const FLOOD_LINE = 1024;
const FLOOD_CHUNK = Buffer.from(`#flood ${'x'.repeat(FLOOD_LINE - 8)}\n`.repeat(64), 'latin1');
const FLOOD_BURST = 16;
// A flood that no one stops is ended by the server after FLOOD_MAX_BYTES or
// FLOOD_MAX_MS: a client socket left flowing with no 'data' listener throws
// the bytes away as fast as they come (Node emits them to no one: the pool
// never sees them), and such a flood would burn a core for the rest of the
// run. A pool that holds what it reads without a bound is slower to read
// (250 ms sweeps): it reaches the cap only after holding that much.
const FLOOD_MAX_BYTES = 64 * 1048576;
const FLOOD_MAX_MS = 60000;
// A connection is a target for a flood or bursts only once its slot line is
// surely whole (a split line takes at most 3 x 20 ms) and any late banner sent.
const SETTLED_MS = 200;
// A plan's bad or missing line is normally destroyed by the rover at once (or
// after its handshake timeout); the server gives up on it after this.
const ABANDON_MS = 3000;

let nextConnId = 1;

class Registry {
  constructor() {
    this.byKey = new Map();
  }

  static key(serverPort, clientPort) {
    return `${serverPort}:${clientPort}`;
  }

  add(record) {
    this.byKey.set(record.key, record);
  }

  // The record of a client socket's connection, looked up from the client side.
  lookup(socket) {
    return this.byKey.get(Registry.key(socket.remotePort, socket.localPort));
  }

  // Forgets connections closed on the server side long ago; a client socket
  // that outlives its record's entry here holds the record itself.
  sweep(now, ageMs) {
    for (const [key, rec] of this.byKey) {
      if (rec.serverGoneAt !== undefined && now - rec.serverGoneAt > ageMs) this.byKey.delete(key);
    }
  }
}

// Lowest free slot: slots are few (a server has at most a few hundred
// connections), so a scan is enough.
class Slots {
  constructor() {
    this.used = new Set();
  }

  take() {
    let s = 0;
    while (this.used.has(s)) s++;
    this.used.add(s);
    return s;
  }

  give(slot) {
    this.used.delete(slot);
  }
}

class ChaosServer extends EventEmitter {
  /**
   * options.name, options.registry (shared), options.counters (faults by
   * kind, shared), options.now (ms clock)
   */
  constructor({ name, registry, counters, now }) {
    super();
    this.name = name;
    this.host = '127.0.0.1';
    this.port = 0;
    this.registry = registry;
    this.counters = counters;
    this.now = now;
    this.up = false;
    this.accepted = 0;
    this.requests = 0;
    this.answered = 0;
    this.records = new Set(); // live connections (server side open)
    this.plans = []; // for the next accepted connections, in order
    this.stalledUntil = 0;
    this.stallTimer = null;
    this.held = []; // requests held during a stall: [record, id]
    this.slowUntil = 0; // a slowdown: every answer delayMs late until then
    this.slowDelayMs = 0;
    this.slowAnswers = 0; // answers sent late
    this.timers = new Set();
    this.slots = new Slots();
    this.server = null;
  }

  get connections() {
    return this.records.size;
  }

  listen() {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket));
      server.once('error', reject);
      server.listen({ host: this.host, port: this.port }, () => {
        server.removeListener('error', reject);
        server.on('error', (err) => this.emit('error', err));
        this.port = server.address().port;
        this.server = server;
        this.up = true;
        resolve({ host: this.host, port: this.port });
      });
    });
  }

  // A timer the server owns, cleared by shutdown().
  later(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  onConnection(socket) {
    if (!this.up) {
      socket.destroy();
      return;
    }
    const now = this.now();
    const rec = {
      id: nextConnId++,
      server: this,
      key: ChaosServer.keyOf(this.port, socket.remotePort),
      slot: this.slots.take(),
      socket,
      acceptedAt: now,
      plan: null,
      trailing: null, // bytes sent after the slot line, if any
      goodbye: null, // a last line sent before closing, if any
      serverClosedAt: undefined, // the server ended, destroyed or reset its end
      closedHow: undefined,
      deadAt: undefined, // confirmed: any reading peer has seen it
      serverGoneAt: undefined, // server-side socket closed
      halfOpenFlagged: false,
      waiting: null, // requests held until a late banner is sent
      partial: '',
      // Bytes written after the slot line, other than answers, since the
      // last request came in: what the pool can hold for it is at most this
      // (the user of a lease reads everything up to its answer).
      unrequested: 0,
      flood: null, // { startedAt, bytes, endedAt, how } while and after a flood
      burst: null, // { until, lines, bytes, skipped } for bursts
      burstSent: 0, // last burst line's sequence number (1, 2, ...)
      lastRequestAt: undefined, // when the last request came in
      lastAnswerId: null, // id of the last answer written, and
      burstAtAnswer: 0, //   the burst lines written before it
    };
    this.accepted++;
    this.records.add(rec);
    this.registry.add(rec);
    socket.setNoDelay(true);
    socket.on('error', () => {}); // resets by clients are routine here
    socket.on('end', () => {
      // The client half-closed (or closed): answer with our FIN, as a server
      // without allowHalfOpen would.
      if (rec.serverClosedAt === undefined) this.markClosed(rec, 'after-client-end');
      if (!socket.destroyed && !socket.writableEnded) socket.end();
    });
    socket.once('close', () => {
      if (rec.flood !== null && rec.flood.endedAt === undefined) {
        rec.flood.endedAt = this.now();
        if (rec.flood.how === undefined)
          rec.flood.how = rec.serverClosedAt === undefined ? 'client closed' : `server closed (${rec.closedHow})`;
      }
      this.records.delete(rec);
      this.slots.give(rec.slot);
      rec.serverGoneAt = this.now();
      if (rec.serverClosedAt === undefined) this.markClosed(rec, 'client-closed');
      rec.socket = null;
    });
    socket.setEncoding('latin1');
    socket.on('data', (text) => this.onData(rec, text));

    // A plan may shape several connections in a row (`count`).
    let plan = null;
    if (this.plans.length > 0) {
      plan = this.plans[0];
      if (plan.count === undefined || --plan.count <= 0) this.plans.shift();
    }
    rec.plan = plan;
    this.greet(rec, plan);
  }

  static keyOf(serverPort, clientPort) {
    return Registry.key(serverPort, clientPort);
  }

  greet(rec, plan) {
    const line = `${rec.slot}\r\n`;
    const socket = rec.socket;
    if (plan === null) {
      socket.write(line);
      return;
    }
    this.count(plan.kind);
    switch (plan.kind) {
      case 'split-line': {
        // The line in 2 or 3 pieces, a few ms apart (no Nagle: separate segments).
        const cuts = plan.cuts
          .map((c) => Math.min(line.length, Math.max(1, Math.round(c * line.length))))
          .sort((a, b) => a - b);
        const pieces = [];
        let from = 0;
        for (const cut of [...cuts, line.length]) {
          const piece = line.slice(from, cut);
          from = cut;
          if (piece.length > 0) pieces.push(piece);
        }
        // Each piece's timer set by the one before: timers of different
        // durations that come due in the same turn of a busy loop do not
        // fire in the order of their due times (a list of another duration
        // with an older head runs first), which wrote "0\r\n" before "2" of
        // "20\r\n" and gave the pool slot 0 and a stray "2" to its first user.
        const next = () => {
          const piece = pieces.shift();
          if (piece === undefined || rec.socket === null || rec.socket.destroyed || rec.socket.writableEnded) return;
          rec.socket.write(piece);
          if (pieces.length > 0) this.later(plan.gapMs, next);
        };
        this.later(plan.gapMs, next);
        break;
      }
      case 'bad-line':
        socket.write(plan.text);
        this.later(ABANDON_MS, () => this.destroy(rec, 'abandoned-bad-line'));
        break;
      case 'silent':
        this.later(ABANDON_MS, () => this.destroy(rec, 'abandoned-silent'));
        break;
      case 'early-close':
        if (plan.partial) socket.write(plan.partial);
        this.later(plan.afterMs, () => this.closeWith(rec, plan.how, 'early-close'));
        break;
      case 'trailing':
      case 'trailing-close': {
        rec.trailing = `#hi ${rec.id}\n`;
        rec.unrequested += rec.trailing.length;
        if (plan.lateMs > 0) {
          // Requests that come before the banner are answered after it: the
          // banner is always the first thing a user reads.
          socket.write(line);
          rec.waiting = [];
          this.later(plan.lateMs, () => {
            const waiting = rec.waiting;
            rec.waiting = null;
            if (rec.socket === null || rec.socket.destroyed || rec.socket.writableEnded) return;
            rec.socket.write(rec.trailing);
            for (const id of waiting) this.request(rec, id);
          });
        } else if (plan.oneWrite) {
          socket.write(line + rec.trailing);
        } else {
          socket.write(line);
          socket.write(rec.trailing);
        }
        if (plan.kind === 'trailing-close') {
          this.later(plan.closeAfterMs, () => this.closeWith(rec, plan.how, `trailing-then-${plan.how}`));
        }
        break;
      }
      default:
        socket.write(line);
    }
  }

  onData(rec, text) {
    const lines = (rec.partial + text).split('\n');
    rec.partial = lines.pop();
    if (rec.partial.length > 1024) {
      this.destroy(rec, 'overflow');
      return;
    }
    for (const line of lines) {
      this.requests++;
      rec.unrequested = 0;
      rec.lastRequestAt = this.now();
      if (rec.waiting !== null) rec.waiting.push(line);
      else this.request(rec, line);
    }
  }

  request(rec, id) {
    if (this.stalledUntil > 0) this.held.push([rec, id]);
    else if (this.slowUntil > 0 && this.now() < this.slowUntil) {
      // One request at a time per connection: no answer overtakes another.
      this.slowAnswers++;
      this.later(this.slowDelayMs, () => this.answer(rec, id));
    } else this.answer(rec, id);
  }

  answer(rec, id) {
    const socket = rec.socket;
    if (socket === null || socket.destroyed || socket.writableEnded) return;
    this.answered++;
    rec.lastAnswerId = id;
    rec.burstAtAnswer = rec.burstSent;
    socket.write(`ok ${id}\n`);
  }

  count(kind) {
    this.counters[kind] = (this.counters[kind] || 0) + 1;
  }

  // The server's end is gone (or going): a reading client sees it within one
  // poll phase. deadAt is set once that surely happened.
  markClosed(rec, how) {
    if (rec.serverClosedAt !== undefined) return;
    rec.serverClosedAt = this.now();
    rec.closedHow = how;
    this.emit('server-close', rec);
    // Not a server timer: it must fire even after shutdown() (it only writes
    // to the record), and it is short.
    setTimeout(
      () =>
        setImmediate(() => {
          rec.deadAt = this.now();
        }),
      CONFIRM_MS,
    );
  }

  destroy(rec, how) {
    if (rec.socket === null || rec.socket.destroyed) return;
    this.markClosed(rec, how);
    rec.socket.destroy();
  }

  closeWith(rec, how, label) {
    const socket = rec.socket;
    if (socket === null || socket.destroyed) return false;
    if (how === 'end') {
      if (socket.writableEnded) return false;
      this.markClosed(rec, label);
      socket.end();
    } else if (how === 'reset') {
      this.markClosed(rec, label);
      socket.resetAndDestroy();
    } else {
      this.destroy(rec, label);
    }
    return true;
  }

  // A live connection that got its whole slot line and is still open both
  // ways, picked with `random`; null if none.
  pick(random) {
    const live = [];
    for (const rec of this.records) {
      if (
        rec.serverClosedAt === undefined &&
        rec.socket !== null &&
        !rec.socket.destroyed &&
        (rec.plan === null || rec.plan.kind === 'trailing' || rec.plan.kind === 'split-line')
      )
        live.push(rec);
    }
    if (live.length === 0) return null;
    return live[Math.floor(random() * live.length)];
  }

  // Faults on a live connection: 'reset', 'half-close' (FIN, keep reading),
  // 'close' (destroy: FIN), 'goodbye' (a last line, then a close by `ev.how`
  // `ev.afterMs` later). Returns whether a connection was hit.
  hit(kind, random, ev) {
    const rec = this.pick(random);
    if (rec === null) return false;
    if (kind === 'goodbye') {
      rec.goodbye = `#bye ${rec.id}`;
      rec.unrequested += rec.goodbye.length + 1;
      rec.socket.write(`${rec.goodbye}\n`);
      this.later(ev.afterMs, () => this.closeWith(rec, ev.how, `goodbye-then-${ev.how}`));
      return true;
    }
    const how = kind === 'reset' ? 'reset' : kind === 'half-close' ? 'end' : 'destroy';
    return this.closeWith(rec, how, kind);
  }

  // A connection that has had its slot line for a while, open both ways, not
  // flooded or bursting yet. The server cannot know whether the client's
  // pool holds it idle or lent; with `quietMs`, it prefers one that sent no
  // request for that long (idle, most likely), else any.
  pickSettled(random, quietMs = 0) {
    const now = this.now();
    const live = [];
    const quiet = [];
    for (const rec of this.records) {
      if (
        rec.serverClosedAt === undefined &&
        rec.socket !== null &&
        !rec.socket.destroyed &&
        !rec.socket.writableEnded &&
        rec.flood === null &&
        rec.burst === null &&
        rec.waiting === null &&
        now - rec.acceptedAt >= SETTLED_MS &&
        (rec.plan === null || rec.plan.kind === 'trailing' || rec.plan.kind === 'split-line')
      ) {
        live.push(rec);
        if (quietMs > 0 && now - (rec.lastRequestAt ?? rec.acceptedAt) >= quietMs) quiet.push(rec);
      }
    }
    const from = quiet.length > 0 ? quiet : live;
    if (from.length === 0) return null;
    return from[Math.floor(random() * from.length)];
  }

  // Streams to a connection without end: 64 KiB chunks as fast as the
  // socket drains, until the connection closes (or FLOOD_MAX_MS).
  // Returns the record hit, or null.
  flood(random, quietMs) {
    const rec = this.pickSettled(random, quietMs);
    if (rec === null) return null;
    const socket = rec.socket;
    rec.flood = { startedAt: this.now(), bytes: 0, endedAt: undefined, how: undefined };
    const pump = () => {
      if (socket.destroyed || socket.writableEnded || rec.flood.endedAt !== undefined) return;
      for (let i = 0; i < FLOOD_BURST; i++) {
        if (rec.flood.bytes >= FLOOD_MAX_BYTES) {
          rec.flood.how = 'capped: the server closed it';
          this.destroy(rec, 'flood-capped');
          return;
        }
        rec.flood.bytes += FLOOD_CHUNK.length;
        rec.unrequested += FLOOD_CHUNK.length;
        if (!socket.write(FLOOD_CHUNK)) {
          socket.once('drain', pump);
          return;
        }
      }
      setImmediate(pump);
    };
    pump();
    this.later(FLOOD_MAX_MS, () => {
      if (rec.flood.endedAt !== undefined || rec.socket === null) return;
      rec.flood.how = 'capped: the server closed it';
      this.destroy(rec, 'flood-capped');
    });
    return rec;
  }

  // Bursts below the bound: every `gapMs` for `durationMs`, a burst of
  // 200-1500 bytes of numbered lines (`#burst <conn> <seq> ...\n`), sent only
  // while the bytes written since the connection's last request stay within
  // `budget` (so a pool with maxHeldBytes above the budget never holds more
  // than that for it). Returns the record hit, or null.
  burst(random, ev, budget) {
    const rec = this.pickSettled(random, ev.quietMs);
    if (rec === null) return null;
    rec.burst = { until: this.now() + ev.durationMs, lines: 0, bytes: 0, skipped: 0, sent: 0 };
    const tick = () => {
      const socket = rec.socket;
      if (socket === null || socket.destroyed || socket.writableEnded || rec.serverClosedAt !== undefined) return;
      if (this.now() >= rec.burst.until) return;
      const size = 200 + Math.floor(random() * 1301);
      if (rec.unrequested + size > budget) {
        rec.burst.skipped++;
      } else {
        let text = '';
        while (text.length < size) {
          rec.burstSent++;
          const head = `#burst ${rec.id} ${rec.burstSent} `;
          const pad = Math.max(0, 40 + Math.floor(random() * 80) - head.length);
          text += `${head}${'y'.repeat(pad)}\n`;
          rec.burst.lines++;
        }
        rec.burst.bytes += text.length;
        rec.burst.sent++;
        rec.unrequested += text.length;
        socket.write(text, 'latin1');
      }
      this.later(ev.gapMs, tick);
    };
    tick();
    return rec;
  }

  stall(ms) {
    const until = this.now() + ms;
    if (until <= this.stalledUntil) return;
    this.stalledUntil = until;
    if (this.stallTimer !== null) {
      clearTimeout(this.stallTimer);
      this.timers.delete(this.stallTimer);
    }
    this.stallTimer = this.later(ms, () => {
      this.stallTimer = null;
      this.unstall();
    });
  }

  // Every answer `delayMs` late for `durationMs` (a later slowdown replaces
  // the delay and extends the end).
  slow(delayMs, durationMs) {
    this.slowDelayMs = delayMs;
    this.slowUntil = Math.max(this.slowUntil, this.now() + durationMs);
  }

  unstall() {
    this.stalledUntil = 0;
    const held = this.held;
    this.held = [];
    for (const [rec, id] of held) this.answer(rec, id);
  }

  // Stops listening and ends every connection ('fin': destroy, 'reset').
  kill(how) {
    this.up = false;
    for (const rec of [...this.records]) {
      if (how === 'reset') {
        this.markClosed(rec, 'kill-reset');
        rec.socket.resetAndDestroy();
      } else {
        this.destroy(rec, 'kill-fin');
      }
    }
    this.held = [];
    return this.closeListener();
  }

  closeListener() {
    const server = this.server;
    this.server = null;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  // Listens again on the same port (retries a few times if the port is
  // briefly unavailable).
  async restart() {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.listen();
        return;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  // End of the run: no more chaos; held answers are sent.
  calm() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.stallTimer = null;
    this.plans = [];
    this.slowUntil = 0;
    this.unstall();
  }

  // Stops listening; connections still open are reported by the caller first.
  async shutdown() {
    this.calm();
    this.up = false;
    for (const rec of [...this.records]) if (rec.socket !== null) rec.socket.destroy();
    await this.closeListener();
  }
}

module.exports = { ChaosServer, Registry, CONFIRM_MS, FLOOD_MAX_MS, FLOOD_MAX_BYTES, FLOOD_CHUNK };
