'use strict';

// What the soak checks, all along the run. Every check that fails is a
// violation, counted by kind with a few examples; the soak exits non-zero on
// any.
//
// The tracker knows, from outside the pool:
// - who holds each lent socket (the soak's workers register every lease and
//   release), so a socket lent while someone holds it is caught;
// - every socket a client kept (newConnection is wrapped per client; the
//   wrapper only watches), and through the server's registry, the record of
//   its connection: when the server closed its end, and `deadAt`, when any
//   reading client must have seen it;
// - so the idle sockets of a client: kept, alive (neither destroyed nor
//   dropped by the pool: `_destroyed`), not lent (`_leased`, the pool's own
//   mark, covers a socket handed to a waiter whose promise has not run yet)
//   and not held.

const net = require('node:net');
const { types } = require('node:util');
const { FLOOD_CHUNK } = require('./chaos-server.js');

// One flood line, without its newline.
const FLOOD_LINE_TEXT = FLOOD_CHUNK.toString('latin1', 0, FLOOD_CHUNK.indexOf(10));

const kRecord = Symbol('soak.record'); // the server's record of the connection
const kLeases = Symbol('soak.leases'); // times lent
const kSeenTrailing = Symbol('soak.seenTrailing'); // a reader saw the bytes after the slot line
const kReturnedPaused = Symbol('soak.returnedPaused'); // how its last holder left it
const kFlagged = Symbol('soak.flagged'); // reported as dead and kept, once
const kUnheldSince = Symbol('soak.unheldSince'); // leased by the pool, held by nobody, since
const kBurstSeen = Symbol('soak.burstSeen'); // last burst line (sequence number) a user read
const kBurstAtLease = Symbol('soak.burstAtLease'); // burst lines the server had sent when it was last lent
const kFlowingReturn = Symbol('soak.flowingReturn'); // returned flowing since the last burst line read
const kOverFlagged = Symbol('soak.overFlagged'); // reported over its buffer bound, once

// What one socket's own stream may buffer before backpressure stops it
// reading: its readableHighWaterMark plus one read (libuv reads at most 64 KiB).
const ONE_READ = 65536;

const EXAMPLES_PER_KIND = 5;

class Violations {
  constructor({ now, log }) {
    this.now = now;
    this.log = log;
    this.byKind = new Map(); // kind -> { count, causes: Map, examples: [] }
    this.total = 0;
  }

  add(kind, detail, cause) {
    let v = this.byKind.get(kind);
    if (v === undefined) {
      v = { count: 0, causes: new Map(), examples: [] };
      this.byKind.set(kind, v);
    }
    v.count++;
    this.total++;
    if (cause !== undefined) v.causes.set(cause, (v.causes.get(cause) || 0) + 1);
    const at = (this.now() / 1000).toFixed(1);
    if (v.examples.length < EXAMPLES_PER_KIND) v.examples.push(`t=${at}s ${detail}`);
    if (v.count === 1) this.log(`VIOLATION ${kind} at t=${at}s: ${detail}`);
  }
}

// A message from any thrown value, without trusting it.
function safeMessage(err) {
  try {
    if (err instanceof Error)
      return `${err.name}${typeof err.code === 'string' ? ` [${err.code}]` : ''}: ${err.message}`;
    return `a thrown ${typeof err}`;
  } catch {
    return 'an unprintable thrown value';
  }
}

// A net.Socket, asked without running any trap of a hostile Proxy (the
// soak's own bookkeeping must not throw where the pool must not).
function isRealSocket(value) {
  return typeof value === 'object' && value !== null && !types.isProxy(value) && value instanceof net.Socket;
}

// Forgotten by the soak: the pool dropped it (`_destroyed`), or it closed.
// A socket destroyed before its 'close' may still count in the pool.
function gone(socket) {
  return socket._destroyed === true || socket.closed === true;
}

function alive(socket) {
  return socket.destroyed !== true && socket._destroyed !== true;
}

class Tracker {
  constructor({ violations, counters, now, registry, deadKeptMs, halfOpenMs }) {
    this.v = violations;
    this.counters = counters;
    this.now = now;
    this.registry = registry;
    this.deadKeptMs = deadKeptMs;
    this.halfOpenMs = halfOpenMs;
    this.lostLeaseMs = 1000;
    this.holders = new Map(); // socket -> { client, api, since }
    this.errorsByCode = new Map();
    this.kept = 0;
    this.untracked = 0; // kept sockets with no server record (should stay 0)
    this.lowestChecks = 0;
    // Flooding servers (issue 18).
    this.floodDropped = new WeakSet(); // sockets dropped with reason 'flooded'
    this.droppedFlooded = 0; // seen on the dropped channel
    this.refusedFlooded = 0; // offers refused as flooded (refused channel)
    this.droppedFloodedFlood = 0; // of which on a flooded connection
    this.floodTimeToDrop = []; // ms from flood start to the pool's drop
    this.heldPeak = { bytes: 0, bound: 0, client: -1, ratio: 0 }; // one pool, highest heldBytes
    this.heldSumPeak = 0; // all pools together
    this.heldBoundSum = 0;
    this.heldSupported = false;
    this.socketBufferPeak = { bytes: 0, bound: 0 }; // one kept socket's readableLength
    this.arrayBuffers = {
      ceiling: 0,
      margin: 0,
      formula: 0,
      peakRaw: 0,
      peakAfterGc: 0,
      gcChecks: 0,
      periodicGcPeak: 0,
    };
    this.lastGcSample = 0;
    this.leaseChecks = 0;
    // Adaptive pools (E6, issue 20): what client.servers() showed on scans.
    this.adaptive = {
      scans: 0, // servers() calls checked
      rows: 0, // rows seen
      rowsPeak: 0, // most rows of one pool
      weightMin: Infinity,
      weightMax: -Infinity,
      rowsNotOne: 0, // rows with a weight other than 1
      estimateMin: Infinity,
      estimateMax: -Infinity,
      byServer: new Map(), // server key -> { rows, weightMin, weightMax, weightSum, estimateMax }
      leasesReported: null, // sum of servers()[].leases over adaptive pools before close
    };
  }

  // -- flooding servers ----------------------------------------------------

  // A message of the callosum:pool:refused channel: an offer with more
  // unread bytes than the pool holds is refused as 'flooded' (destroyed).
  onRefused(msg) {
    if (msg === null || typeof msg !== 'object' || msg.reason !== 'flooded') return;
    this.refusedFlooded++;
    if (isRealSocket(msg.socket)) this.floodDropped.add(msg.socket);
  }

  // A message of the callosum:pool:dropped channel.
  onDropped(msg) {
    if (msg === null || typeof msg !== 'object') return;
    const sc = msg.client === undefined ? undefined : this.clientOf.get(msg.client);
    if (sc !== undefined) this.checkHeld(sc, 'drop');
    if (msg.reason !== 'flooded') return;
    const socket = msg.socket;
    this.droppedFlooded++;
    this.floodDropped.add(socket);
    if (msg.leased !== false) this.v.add('flooded-leased', `a socket dropped as flooded with leased: ${msg.leased}`);
    const rec = isRealSocket(socket) ? socket[kRecord] : undefined;
    // Dropped means destroyed, its slot freed on both sides: the server sees
    // the connection close soon after.
    setTimeout(() => {
      if (isRealSocket(socket) && socket.destroyed !== true) {
        this.v.add('flooded-not-destroyed', `slot ${msg.slot}: dropped as flooded, not destroyed 1 s later`);
      } else if (rec !== undefined && rec.socket !== null && rec.serverClosedAt === undefined) {
        this.v.add(
          'flooded-slot-kept',
          `conn ${rec.id} on ${rec.server.name}: dropped as flooded 1 s ago, still open on the server`,
        );
      }
    }, 1000).unref();
    if (rec === undefined || sc === undefined) return;
    if (rec.flood !== null) {
      this.droppedFloodedFlood++;
      if (rec.flood.how === undefined) {
        rec.flood.how = 'dropped as flooded by the pool';
        this.floodTimeToDrop.push(this.now() - rec.flood.startedAt);
      }
    }
    // What the server wrote since the last request is an upper bound of
    // what the pool can hold for it: at or below the bound, the pool dropped
    // a socket it should have kept (a burst, a banner).
    if (rec.unrequested <= sc.maxHeldBytes) {
      const what =
        rec.flood !== null ? 'flood' : rec.burst !== null ? 'bursts' : rec.plan !== null ? rec.plan.kind : 'no plan';
      this.v.add(
        'dropped-below-bound',
        `client ${sc.index}: slot ${msg.slot} (conn ${rec.id}, ${what}) dropped as flooded with at most ${rec.unrequested} bytes sent since its last request, maxHeldBytes ${sc.maxHeldBytes}`,
        what,
      );
    }
  }

  // Per pool: held bytes within slotCount x maxHeldBytes; per kept socket:
  // its stream's buffer within maxHeldBytes + readableHighWaterMark + one read.
  checkHeld(sc, where) {
    const client = sc.client;
    if (client.closed) return;
    const st = client.stats();
    if (typeof st.heldBytes !== 'number') return;
    this.heldSupported = true;
    // In a drop's publish, the pool has taken the socket's slot off
    // slotCount but not yet released its held bytes: counted once more.
    const slots = client.slotCount + (where === 'drop' ? 1 : 0);
    const bound = slots * st.maxHeldBytes;
    if (where === 'drop' && st.heldBytes > client.slotCount * st.maxHeldBytes)
      this.counters.add(
        'flood',
        "drop publishes with the dropped socket's held bytes still in heldBytes, its slot out of slotCount",
      );
    if (st.heldBytes > bound) {
      this.v.add(
        'held-over-bound',
        `client ${sc.index} (${where}): heldBytes ${st.heldBytes} > slotCount ${client.slotCount} x maxHeldBytes ${st.maxHeldBytes}`,
      );
    }
    if (st.heldBytes > this.heldPeak.bytes)
      this.heldPeak = { bytes: st.heldBytes, bound, client: sc.index, maxHeldBytes: st.maxHeldBytes };
    return st.heldBytes;
  }

  // Where the process's buffered bytes are, for a violation's message.
  buffersNow() {
    let serverWrite = 0;
    let serverRead = 0;
    let keptRead = 0;
    let keptWrite = 0;
    for (const rec of this.registry.byKey.values()) {
      const s = rec.socket;
      if (s !== null && s !== undefined) {
        serverWrite += s.writableLength;
        serverRead += s.readableLength;
      }
      const c = rec.clientSocket;
      if (c !== undefined && !c.destroyed) {
        keptRead += c.readableLength;
        keptWrite += c.writableLength;
      }
    }
    let held = 0;
    for (const sc of this.clientList ?? []) {
      const st = sc.client.closed ? undefined : sc.client.stats();
      if (st !== undefined && typeof st.heldBytes === 'number') held += st.heldBytes;
    }
    return `pools' heldBytes ${held}; server sockets: ${serverWrite} bytes queued to write, ${serverRead} unread; client sockets kept: ${keptRead} unread, ${keptWrite} queued`;
  }

  // The process's ArrayBuffer memory against the ceiling; above it, after a
  // full gc only (garbage is not memory anyone holds).
  checkArrayBuffers() {
    const ab = this.arrayBuffers;
    if (ab.ceiling === 0) return;
    let now = process.memoryUsage().arrayBuffers;
    if (now > ab.peakRaw) ab.peakRaw = now;
    const t = this.now();
    const periodic = t - this.lastGcSample >= 5000;
    if ((now > ab.ceiling || periodic) && typeof global.gc === 'function') {
      // Twice: after one full gc, the backing stores of read buffers that
      // just became garbage are often still counted (freed by the next one).
      global.gc();
      global.gc();
      now = process.memoryUsage().arrayBuffers;
      if (periodic) {
        this.lastGcSample = t;
        if (now > ab.periodicGcPeak) ab.periodicGcPeak = now;
      } else ab.gcChecks++;
      if (now > ab.peakAfterGc) ab.peakAfterGc = now;
    }
    if (now > ab.ceiling) {
      this.v.add(
        'array-buffers-over-ceiling',
        `arrayBuffers ${now} bytes (after a gc) > ceiling ${ab.ceiling} (${ab.formula} from the pools' options + ${ab.margin} margin); ${this.buffersNow()}`,
      );
    }
  }

  // -- errors ------------------------------------------------------------

  onError(sc, err, where) {
    let code;
    try {
      code = err !== null && typeof err === 'object' ? err.code : undefined;
    } catch {
      code = undefined;
    }
    if (typeof code !== 'string') {
      this.v.add('uncoded-error', `client ${sc.index} ${where}: ${safeMessage(err)}`);
      code = '(no code)';
    }
    this.errorsByCode.set(code, (this.errorsByCode.get(code) || 0) + 1);
  }

  // -- kept sockets --------------------------------------------------------

  register(sc) {
    if (this.clientOf === undefined) this.clientOf = new WeakMap();
    this.clientOf.set(sc.client, sc);
    if (this.clientList === undefined) this.clientList = [];
    this.clientList.push(sc);
  }

  // Called by the newConnection wrapper before the pool sees the socket.
  recordOf(socket) {
    if (!isRealSocket(socket) || socket.destroyed) return undefined;
    return this.registry.lookup(socket);
  }

  // Called after the pool's newConnection: was it kept?
  afterOffer(sc, slot, socket, rec) {
    if (!isRealSocket(socket) || socket.destroyed || socket._slot !== slot || socket._destroyed !== false) return;
    if (socket[kLeases] !== undefined) return; // seen already
    socket[kLeases] = 0;
    if (rec === undefined) this.untracked++;
    else {
      socket[kRecord] = rec;
      rec.clientSocket = socket;
      if (rec.trailing !== null) this.counters.add('exposure', 'kept with bytes after the slot line');
    }
    sc.kept.add(socket);
    this.kept++;
  }

  // The idle sockets of a client as the soak sees them, pruning dead ones.
  idleCandidates(sc) {
    const out = [];
    for (const s of sc.kept) {
      if (gone(s)) sc.kept.delete(s);
      else if (alive(s) && s._leased !== true && !this.holders.has(s)) out.push(s);
    }
    return out;
  }

  // After a getConnection (or the synchronous part of acquire): `lent` is
  // what it lent (undefined: nothing). Every candidate still alive with a
  // lower slot, or any alive candidate when nothing was lent, is a violation.
  // An adaptive pool lends by effective slot (slot x its server's weight),
  // not the lowest slot: only 'idle-not-lent' holds for it; a higher slot
  // lent is counted, as the sign that the order did move.
  checkLowest(sc, candidates, lent, api) {
    this.lowestChecks++;
    let min = Infinity;
    for (const s of candidates) {
      if (s !== lent && alive(s) && s._leased !== true && s._slot < min) min = s._slot;
    }
    if (lent === undefined) {
      if (min !== Infinity) {
        this.v.add(
          'idle-not-lent',
          `client ${sc.index}${sc.adaptive ? ' (adaptive)' : ''} ${api}: nothing lent while slot ${min} was idle and alive`,
        );
      }
      return;
    }
    if (sc.adaptive) {
      this.counters.add('adaptive', 'lease checks');
      if (lent._slot > min) this.counters.add('adaptive', 'leases of a higher slot than the lowest idle one');
      return;
    }
    if (lent._slot > min) {
      this.v.add(
        'not-lowest',
        `client ${sc.index} ${api}: lent slot ${lent._slot} while slot ${min} was idle and alive`,
      );
    }
  }

  // The server closed its end of a connection (ChaosServer 'server-close').
  // Counts how often the soak makes the faults it looks for.
  onServerClose(rec) {
    const s = rec.clientSocket;
    if (s === undefined || !alive(s) || rec.closedHow === 'after-client-end' || rec.closedHow === 'client-closed')
      return;
    const idle = s._leased !== true && !this.holders.has(s);
    if (!idle) return;
    if (s[kLeases] === 0) {
      this.counters.add(
        'exposure',
        rec.trailing !== null
          ? 'server closed a kept idle socket never lent, bytes unread'
          : 'server closed a kept idle socket never lent',
      );
    } else {
      this.counters.add(
        'exposure',
        s[kReturnedPaused]
          ? 'server closed a kept idle socket returned paused'
          : 'server closed a kept idle socket returned flowing',
      );
    }
  }

  // A worker got `socket` from the pool.
  onLease(sc, socket, api) {
    if (!(socket instanceof net.Socket)) {
      this.v.add('lent-non-socket', `client ${sc.index} ${api}: lent ${typeof socket}`);
      return false;
    }
    const now = this.now();
    const holder = this.holders.get(socket);
    if (holder !== undefined) {
      this.v.add(
        'two-holders',
        `client ${sc.index} ${api}: lent slot ${socket._slot}, held since ${(now - holder.since).toFixed(0)} ms by a worker of client ${holder.client} (${holder.api})`,
      );
    }
    this.holders.set(socket, { client: sc.index, api, since: now });
    const rec = socket[kRecord];
    if (socket.destroyed) {
      this.v.add('lent-destroyed', `client ${sc.index} ${api}: slot ${socket._slot} lent destroyed`);
    } else if (rec !== undefined && rec.deadAt !== undefined && socket[kFlagged] !== 'lent') {
      socket[kFlagged] = 'lent';
      const cause = this.causeOf(socket, rec);
      this.v.add(
        'lent-dead',
        `client ${sc.index} ${api}: slot ${socket._slot} (server ${rec.server.name} conn ${rec.id}) lent ${(now - rec.serverClosedAt).toFixed(0)} ms after the server closed it (${cause})`,
        cause,
      );
    } else if (socket.writableEnded === true || socket.writable === false) {
      this.v.add(
        'lent-unwritable',
        `client ${sc.index} ${api}: slot ${socket._slot} lent with its writable side ended`,
        socket[kReturnedPaused] ? 'returned paused' : 'returned flowing',
      );
    }
    if (sc.client.slotCount > sc.client.MAX_SLOTS) {
      this.v.add(
        'slot-count-over-max',
        `client ${sc.index}: slotCount ${sc.client.slotCount} > MAX_SLOTS ${sc.client.MAX_SLOTS}`,
      );
    }
    if (this.floodDropped.has(socket)) {
      this.v.add(
        'flooded-lent',
        `client ${sc.index} ${api}: slot ${socket._slot} lent after the pool dropped it as flooded`,
      );
    }
    this.checkSocketBuffer(sc, socket, `lent by ${api}`);
    // stats() costs a few microseconds: on the leases of flooded or bursting
    // connections, and one lease in 64 (besides every scan and every drop).
    if ((rec !== undefined && (rec.flood !== null || rec.burst !== null)) || (this.leaseChecks++ & 63) === 0) {
      this.checkHeld(sc, api);
    }
    if (rec !== undefined) socket[kBurstAtLease] = rec.burstSent;
    const listeners = socket.listenerCount('close');
    if (listeners > 8)
      this.v.add('listener-growth', `client ${sc.index}: a lent socket has ${listeners} 'close' listeners`);
    if (socket[kLeases] !== undefined) socket[kLeases]++;
    if (sc.adaptive) this.counters.add('adaptive', 'leases by adaptive pools');
    return true;
  }

  // client.servers() consistent (E6): an adaptive pool's rows hold at most
  // its kept sockets plus the displaced ones still lent, every weight is
  // finite within [1/8, 8], and the rows are bounded like the pool's server
  // map (2 x MAX_SLOTS + 64); a pool that is not adaptive shows none.
  checkServers(sc) {
    const client = sc.client;
    if (client.closed || typeof client.servers !== 'function') return;
    let rows;
    try {
      rows = client.servers();
    } catch (err) {
      this.v.add('servers-threw', `client ${sc.index}: servers() threw ${safeMessage(err)}`);
      return;
    }
    if (!Array.isArray(rows)) {
      this.v.add('servers-inconsistent', `client ${sc.index}: servers() returned ${typeof rows}`);
      return;
    }
    if (!sc.adaptive) {
      if (rows.length !== 0)
        this.v.add('servers-inconsistent', `client ${sc.index}: not adaptive, servers() has ${rows.length} rows`);
      return;
    }
    const a = this.adaptive;
    a.scans++;
    const st = client.stats();
    const limit = 2 * client.MAX_SLOTS + 64;
    let held = 0;
    const bad = [];
    for (const row of rows) {
      a.rows++;
      const { server, weight, estimateMs, leases } = row;
      if (typeof server !== 'string') bad.push(`server ${typeof server}`);
      if (!Number.isInteger(row.held) || row.held < 0) bad.push(`${server}: held ${row.held}`);
      else held += row.held;
      if (!Number.isInteger(leases) || leases < 0) bad.push(`${server}: leases ${leases}`);
      if (estimateMs !== null && !(Number.isFinite(estimateMs) && estimateMs >= 0))
        bad.push(`${server}: estimateMs ${estimateMs}`);
      if (!(Number.isFinite(weight) && weight >= 0.125 - 1e-12 && weight <= 8 + 1e-12)) {
        this.v.add(
          'servers-weight',
          `client ${sc.index}: server ${server} weight ${weight}: not a finite number within [1/8, 8]`,
        );
        continue;
      }
      if (weight < a.weightMin) a.weightMin = weight;
      if (weight > a.weightMax) a.weightMax = weight;
      if (weight !== 1) a.rowsNotOne++;
      if (estimateMs !== null && Number.isFinite(estimateMs)) {
        if (estimateMs < a.estimateMin) a.estimateMin = estimateMs;
        if (estimateMs > a.estimateMax) a.estimateMax = estimateMs;
      }
      let b = a.byServer.get(server);
      if (b === undefined) {
        b = { rows: 0, weightMin: Infinity, weightMax: -Infinity, weightSum: 0, estimateMax: -Infinity };
        a.byServer.set(server, b);
      }
      b.rows++;
      b.weightSum += weight;
      if (weight < b.weightMin) b.weightMin = weight;
      if (weight > b.weightMax) b.weightMax = weight;
      if (estimateMs !== null && estimateMs > b.estimateMax) b.estimateMax = estimateMs;
    }
    if (bad.length > 0)
      this.v.add('servers-inconsistent', `client ${sc.index}: servers() rows ${bad.slice(0, 3).join('; ')}`);
    if (rows.length > a.rowsPeak) a.rowsPeak = rows.length;
    if (rows.length > limit) {
      this.v.add(
        'servers-inconsistent',
        `client ${sc.index}: servers() has ${rows.length} rows > 2 x MAX_SLOTS + 64 = ${limit}`,
      );
    }
    if (held > client.slotCount + st.displaced) {
      this.v.add(
        'servers-inconsistent',
        `client ${sc.index}: servers() holds ${held} connections > slotCount ${client.slotCount} + displaced still lent ${st.displaced}`,
      );
    }
  }

  onRelease(socket) {
    this.holders.delete(socket);
    if (socket.readableFlowing === true) socket[kFlowingReturn] = true;
  }

  // A kept socket's stream buffer (held bytes given back at a lease are in it).
  checkSocketBuffer(sc, socket, where) {
    const len = socket.readableLength;
    if (typeof len !== 'number' || sc.maxHeldBytes === undefined) return;
    const bound = sc.maxHeldBytes + socket.readableHighWaterMark + ONE_READ;
    if (len > this.socketBufferPeak.bytes) this.socketBufferPeak = { bytes: len, bound };
    if (len > bound && socket[kOverFlagged] !== true) {
      socket[kOverFlagged] = true;
      this.v.add(
        'socket-over-bound',
        `client ${sc.index} (${where}): slot ${socket._slot} has ${len} bytes unread > maxHeldBytes ${sc.maxHeldBytes} + readableHighWaterMark ${socket.readableHighWaterMark} + ${ONE_READ}`,
      );
    }
  }

  // The first line a lease reads is the end of a flood line, on a flooded
  // connection returned flowing since: its start was emitted by Node to no
  // one before the lease (bytes the pool never sees, as with bursts). Counted.
  isFloodTail(socket, line) {
    const rec = socket[kRecord];
    if (rec === undefined || rec.flood === null || socket[kFlowingReturn] !== true) return false;
    if (!FLOOD_LINE_TEXT.endsWith(line)) return false;
    this.counters.add('flood', "flood lines cut by a flowing return, their end read (not the pool's)");
    return true;
  }

  isHeld(socket) {
    return this.holders.has(socket);
  }

  // A reader saw a '#' line: the bytes the server sent after the slot line.
  onBanner(socket, line) {
    const rec = socket[kRecord];
    if (line.startsWith('#flood ')) {
      if (rec !== undefined && rec.flood !== null) this.counters.add('flood', 'flood lines read by a user');
      else
        this.v.add(
          'unexpected-banner',
          `a flood line on a socket not flooded (${rec === undefined ? 'no record' : `conn ${rec.id}`})`,
        );
      return;
    }
    if (line.startsWith('#burst ')) {
      this.onBurstLine(socket, rec, line);
      return;
    }
    if (
      rec !== undefined &&
      rec.trailing !== null &&
      line === rec.trailing.slice(0, -1) &&
      socket[kSeenTrailing] !== true
    ) {
      socket[kSeenTrailing] = true;
      this.counters.add('exposure', 'bytes after the slot line read by the first user');
    } else if (rec !== undefined && line === rec.goodbye) {
      this.counters.add('exposure', 'goodbye line read by a user');
    } else this.v.add('unexpected-banner', `a socket read ${JSON.stringify(line.slice(0, 40))}`);
  }

  // A burst line: in order, none repeated, none missing unless the socket
  // was returned flowing since the last one read (Node's stream emits the
  // bytes of a flowing socket with no 'data' listener into the void: the
  // pool never sees them).
  onBurstLine(socket, rec, line) {
    const parts = line.split(' ');
    const conn = Number(parts[1]);
    const seq = Number(parts[2]);
    if (rec === undefined || rec.burst === null || conn !== rec.id) {
      this.v.add(
        'unexpected-banner',
        `a burst line of conn ${conn} read on ${rec === undefined ? 'a socket with no record' : `conn ${rec.id}`}`,
      );
      return;
    }
    const seen = socket[kBurstSeen] ?? 0;
    if (seq <= seen) {
      this.v.add('burst-out-of-order', `conn ${rec.id}: burst line ${seq} read after line ${seen}`);
    } else if (seq > seen + 1) {
      if (socket[kFlowingReturn] === true)
        this.counters.add('burst', "lines lost after a flowing return (not the pool's)", seq - seen - 1);
      else
        this.v.add(
          'burst-lost',
          `conn ${rec.id}: burst line ${seq} read after line ${seen}, with only paused returns between`,
        );
    }
    socket[kBurstSeen] = seq;
    socket[kFlowingReturn] = false;
    this.counters.add('burst', 'lines read');
    if (seq <= (socket[kBurstAtLease] ?? 0))
      this.counters.add('burst', 'lines sent before the lease, read by its user');
  }

  // A reader got its answer: the bytes after the slot line, if any, must
  // have come first (nobody may consume them before the first user); so
  // must the burst lines the server wrote before the answer.
  onAnswer(sc, socket, id) {
    const rec = socket[kRecord];
    if (rec !== undefined && rec.burst !== null && rec.lastAnswerId === id) {
      const seen = socket[kBurstSeen] ?? 0;
      if (seen < rec.burstAtAnswer) {
        if (socket[kFlowingReturn] === true) {
          this.counters.add('burst', "lines lost after a flowing return (not the pool's)", rec.burstAtAnswer - seen);
        } else {
          this.v.add(
            'burst-lost',
            `client ${sc.index}: conn ${rec.id} answered after ${seen} burst lines read, ${rec.burstAtAnswer} written before the answer, with only paused returns between`,
          );
        }
        socket[kBurstSeen] = rec.burstAtAnswer;
        socket[kFlowingReturn] = false;
      } else if (rec.burstAtAnswer > 0) {
        this.counters.add('burst', 'answers read after every burst line before them');
      }
    }
    if (rec !== undefined && rec.trailing !== null && socket[kSeenTrailing] !== true) {
      socket[kSeenTrailing] = true; // once per socket
      this.v.add(
        'trailing-bytes-lost',
        `client ${sc.index}: slot ${socket._slot} (conn ${rec.id}) answered without the ${JSON.stringify(rec.trailing)} the server sent after the slot line`,
      );
    }
  }

  // A reader got a line that is neither its answer nor the server's banner.
  onUnexpected(sc, socket, line, id) {
    const rec = socket[kRecord];
    const conn =
      rec === undefined
        ? 'no record'
        : `conn ${rec.id} on ${rec.server.name}, server slot ${rec.slot}, plan ${rec.plan ? `${rec.plan.kind}${rec.plan.cuts ? ` cuts ${rec.plan.cuts.map((c) => c.toFixed(2)).join('/')} gap ${rec.plan.gapMs} ms` : ''}` : 'none'}, ${rec.flood !== null ? 'flooded, ' : ''}${rec.burst !== null ? 'bursts, ' : ''}accepted ${(this.now() - rec.acceptedAt).toFixed(0)} ms ago, banner ${rec.trailing === null ? 'none' : JSON.stringify(rec.trailing)} ${socket[kSeenTrailing] ? 'seen' : 'unseen'}, server end ${rec.closedHow || 'open'}`;
    this.v.add(
      'unexpected-answer',
      `client ${sc.index}: waiting for "ok ${id}", read ${JSON.stringify(line.slice(0, 60))} on slot ${socket._slot} (lease ${socket[kLeases]}, last returned ${socket[kReturnedPaused] ? 'paused' : 'flowing'}; ${conn})`,
    );
  }

  causeOf(socket, rec) {
    const lent =
      socket[kLeases] > 0 ? (socket[kReturnedPaused] ? 'returned paused' : 'returned flowing') : 'never lent before';
    const late = rec.plan !== null && rec.plan.lateMs > 0 ? ', sent 5-50 ms after it' : ', sent with it';
    const bytes =
      rec.trailing !== null && socket[kSeenTrailing] !== true
        ? `bytes after the slot line unread${late}`
        : rec.goodbye !== null
          ? 'a goodbye line unread'
          : 'nothing unread';
    return `${rec.closedHow}; ${lent}; ${bytes}`;
  }

  // -- periodic ------------------------------------------------------------

  scan(clients, servers) {
    const now = this.now();
    let heldSum = 0;
    for (const sc of clients) {
      const client = sc.client;
      if (client.slotCount > client.MAX_SLOTS) {
        this.v.add(
          'slot-count-over-max',
          `client ${sc.index}: slotCount ${client.slotCount} > MAX_SLOTS ${client.MAX_SLOTS}`,
        );
      }
      // Idle as the soak sees them: alive ones for sure, destroyed ones whose
      // 'close' has not come yet maybe. The pool's idle count must be between.
      let sure = 0;
      let maybe = 0;
      for (const s of sc.kept) {
        if (gone(s)) {
          sc.kept.delete(s);
          continue;
        }
        if (s._leased !== true && !this.holders.has(s)) {
          if (s.destroyed === true) maybe++;
          else sure++;
        }
        if (!alive(s)) continue;
        // Lent by the pool but held by no worker: lost on its way (a waiter
        // that gave up, a hand-off gone wrong). A hand-off resolves within a
        // microtask, so a second is plenty.
        if (s._leased === true && !this.holders.has(s)) {
          if (s[kUnheldSince] === undefined) s[kUnheldSince] = now;
          else if (s[kUnheldSince] !== -1 && now - s[kUnheldSince] > this.lostLeaseMs) {
            this.v.add(
              'lost-lease',
              `client ${sc.index}: slot ${s._slot} leased by the pool for ${(now - s[kUnheldSince]).toFixed(0)} ms, held by nobody`,
            );
            s[kUnheldSince] = -1; // once
          }
        } else if (s[kUnheldSince] !== -1) {
          s[kUnheldSince] = undefined;
        }
        const rec = s[kRecord];
        if (rec === undefined || rec.deadAt === undefined || s[kFlagged] !== undefined) continue;
        if (now - rec.deadAt < this.deadKeptMs || this.holders.has(s)) continue;
        s[kFlagged] = 'kept';
        const cause = this.causeOf(s, rec);
        this.v.add(
          'dead-kept',
          `client ${sc.index}: slot ${s._slot} (server ${rec.server.name} conn ${rec.id}, ${s._leased ? 'leased' : 'idle'}) still kept ${(now - rec.serverClosedAt).toFixed(0)} ms after the server closed it (${cause})`,
          cause,
        );
      }
      for (const s of sc.kept) if (alive(s)) this.checkSocketBuffer(sc, s, 'scan');
      this.checkServers(sc);
      const held = this.checkHeld(sc, 'scan');
      if (held !== undefined) heldSum += held;
      if (!client.closed) {
        const idle = client.stats().idle;
        if (idle < sure) {
          this.v.add(
            'orphan-socket',
            `client ${sc.index}: ${sure} kept sockets alive, not lent, not held, but the pool counts ${idle} idle (kept or destroyed, never neither)`,
          );
        } else if (idle > sure + maybe) {
          this.v.add(
            'idle-count-mismatch',
            `client ${sc.index}: the pool counts ${idle} idle, but only ${sure + maybe} kept sockets are neither lent nor held (an idle socket someone holds?)`,
          );
        }
      }
    }
    if (heldSum > this.heldSumPeak) this.heldSumPeak = heldSum;
    this.checkArrayBuffers();
    for (const server of servers) {
      for (const rec of server.records) {
        if (rec.halfOpenFlagged || rec.serverClosedAt === undefined || rec.socket === null) continue;
        if (now - rec.serverClosedAt < this.halfOpenMs) continue;
        rec.halfOpenFlagged = true;
        this.v.add(
          'half-open-stuck',
          `server ${server.name} conn ${rec.id} (slot ${rec.slot}) still open ${(now - rec.serverClosedAt).toFixed(0)} ms after the server ended it (${rec.closedHow}): its slot stays taken`,
          rec.closedHow,
        );
      }
    }
  }
}

module.exports = {
  Violations,
  Tracker,
  safeMessage,
  alive,
  kRecord,
  kLeases,
  kSeenTrailing,
  kReturnedPaused,
  ONE_READ,
};
