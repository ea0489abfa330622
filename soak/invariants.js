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

const kRecord = Symbol('soak.record'); // the server's record of the connection
const kLeases = Symbol('soak.leases'); // times lent
const kSeenTrailing = Symbol('soak.seenTrailing'); // a reader saw the bytes after the slot line
const kReturnedPaused = Symbol('soak.returnedPaused'); // how its last holder left it
const kFlagged = Symbol('soak.flagged'); // reported as dead and kept, once
const kUnheldSince = Symbol('soak.unheldSince'); // leased by the pool, held by nobody, since

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
    if (err instanceof Error) return `${err.name}${typeof err.code === 'string' ? ` [${err.code}]` : ''}: ${err.message}`;
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
  checkLowest(sc, candidates, lent, api) {
    this.lowestChecks++;
    let min = Infinity;
    for (const s of candidates) {
      if (s !== lent && alive(s) && s._leased !== true && s._slot < min) min = s._slot;
    }
    if (lent === undefined) {
      if (min !== Infinity) {
        this.v.add('idle-not-lent', `client ${sc.index} ${api}: nothing lent while slot ${min} was idle and alive`);
      }
      return;
    }
    if (lent._slot > min) {
      this.v.add('not-lowest', `client ${sc.index} ${api}: lent slot ${lent._slot} while slot ${min} was idle and alive`);
    }
  }

  // The server closed its end of a connection (ChaosServer 'server-close').
  // Counts how often the soak makes the faults it looks for.
  onServerClose(rec) {
    const s = rec.clientSocket;
    if (s === undefined || !alive(s) || rec.closedHow === 'after-client-end' || rec.closedHow === 'client-closed') return;
    const idle = s._leased !== true && !this.holders.has(s);
    if (!idle) return;
    if (s[kLeases] === 0) {
      this.counters.add('exposure', rec.trailing !== null
        ? 'server closed a kept idle socket never lent, bytes unread'
        : 'server closed a kept idle socket never lent');
    } else {
      this.counters.add('exposure', s[kReturnedPaused]
        ? 'server closed a kept idle socket returned paused'
        : 'server closed a kept idle socket returned flowing');
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
      this.v.add('two-holders', `client ${sc.index} ${api}: lent slot ${socket._slot}, held since ${(now - holder.since).toFixed(0)} ms by a worker of client ${holder.client} (${holder.api})`);
    }
    this.holders.set(socket, { client: sc.index, api, since: now });
    const rec = socket[kRecord];
    if (socket.destroyed) {
      this.v.add('lent-destroyed', `client ${sc.index} ${api}: slot ${socket._slot} lent destroyed`);
    } else if (rec !== undefined && rec.deadAt !== undefined && socket[kFlagged] !== 'lent') {
      socket[kFlagged] = 'lent';
      const cause = this.causeOf(socket, rec);
      this.v.add('lent-dead', `client ${sc.index} ${api}: slot ${socket._slot} (server ${rec.server.name} conn ${rec.id}) lent ${(now - rec.serverClosedAt).toFixed(0)} ms after the server closed it (${cause})`, cause);
    } else if (socket.writableEnded === true || socket.writable === false) {
      this.v.add('lent-unwritable', `client ${sc.index} ${api}: slot ${socket._slot} lent with its writable side ended`,
        socket[kReturnedPaused] ? 'returned paused' : 'returned flowing');
    }
    if (sc.client.slotCount > sc.client.MAX_SLOTS) {
      this.v.add('slot-count-over-max', `client ${sc.index}: slotCount ${sc.client.slotCount} > MAX_SLOTS ${sc.client.MAX_SLOTS}`);
    }
    const listeners = socket.listenerCount('close');
    if (listeners > 8) this.v.add('listener-growth', `client ${sc.index}: a lent socket has ${listeners} 'close' listeners`);
    if (socket[kLeases] !== undefined) socket[kLeases]++;
    return true;
  }

  onRelease(socket) {
    this.holders.delete(socket);
  }

  isHeld(socket) {
    return this.holders.has(socket);
  }

  // A reader saw a '#' line: the bytes the server sent after the slot line.
  onBanner(socket, line) {
    const rec = socket[kRecord];
    if (rec !== undefined && rec.trailing !== null && line === rec.trailing.slice(0, -1) && socket[kSeenTrailing] !== true) {
      socket[kSeenTrailing] = true;
      this.counters.add('exposure', 'bytes after the slot line read by the first user');
    } else if (rec !== undefined && line === rec.goodbye) {
      this.counters.add('exposure', 'goodbye line read by a user');
    } else this.v.add('unexpected-banner', `a socket read ${JSON.stringify(line.slice(0, 40))}`);
  }

  // A reader got its answer: the bytes after the slot line, if any, must
  // have come first (nobody may consume them before the first user).
  onAnswer(sc, socket) {
    const rec = socket[kRecord];
    if (rec !== undefined && rec.trailing !== null && socket[kSeenTrailing] !== true) {
      socket[kSeenTrailing] = true; // once per socket
      this.v.add('trailing-bytes-lost', `client ${sc.index}: slot ${socket._slot} (conn ${rec.id}) answered without the ${JSON.stringify(rec.trailing)} the server sent after the slot line`);
    }
  }

  // A reader got a line that is neither its answer nor the server's banner.
  onUnexpected(sc, socket, line, id) {
    const rec = socket[kRecord];
    const conn = rec === undefined ? 'no record'
      : `conn ${rec.id} on ${rec.server.name}, plan ${rec.plan ? rec.plan.kind : 'none'}, banner ${rec.trailing === null ? 'none' : JSON.stringify(rec.trailing)} ${socket[kSeenTrailing] ? 'seen' : 'unseen'}, server end ${rec.closedHow || 'open'}`;
    this.v.add('unexpected-answer', `client ${sc.index}: waiting for "ok ${id}", read ${JSON.stringify(line.slice(0, 60))} on slot ${socket._slot} (lease ${socket[kLeases]}, last returned ${socket[kReturnedPaused] ? 'paused' : 'flowing'}; ${conn})`);
  }

  causeOf(socket, rec) {
    const lent = socket[kLeases] > 0 ? (socket[kReturnedPaused] ? 'returned paused' : 'returned flowing') : 'never lent before';
    const late = rec.plan !== null && rec.plan.lateMs > 0 ? ', sent 5-50 ms after it' : ', sent with it';
    const bytes = rec.trailing !== null && socket[kSeenTrailing] !== true ? `bytes after the slot line unread${late}`
      : rec.goodbye !== null ? 'a goodbye line unread' : 'nothing unread';
    return `${rec.closedHow}; ${lent}; ${bytes}`;
  }

  // -- periodic ------------------------------------------------------------

  scan(clients, servers) {
    const now = this.now();
    for (const sc of clients) {
      const client = sc.client;
      if (client.slotCount > client.MAX_SLOTS) {
        this.v.add('slot-count-over-max', `client ${sc.index}: slotCount ${client.slotCount} > MAX_SLOTS ${client.MAX_SLOTS}`);
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
            this.v.add('lost-lease', `client ${sc.index}: slot ${s._slot} leased by the pool for ${(now - s[kUnheldSince]).toFixed(0)} ms, held by nobody`);
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
        this.v.add('dead-kept', `client ${sc.index}: slot ${s._slot} (server ${rec.server.name} conn ${rec.id}, ${s._leased ? 'leased' : 'idle'}) still kept ${(now - rec.serverClosedAt).toFixed(0)} ms after the server closed it (${cause})`, cause);
      }
      if (!client.closed) {
        const idle = client.stats().idle;
        if (idle < sure) {
          this.v.add('orphan-socket', `client ${sc.index}: ${sure} kept sockets alive, not lent, not held, but the pool counts ${idle} idle (kept or destroyed, never neither)`);
        } else if (idle > sure + maybe) {
          this.v.add('idle-count-mismatch', `client ${sc.index}: the pool counts ${idle} idle, but only ${sure + maybe} kept sockets are neither lent nor held (an idle socket someone holds?)`);
        }
      }
    }
    for (const server of servers) {
      for (const rec of server.records) {
        if (rec.halfOpenFlagged || rec.serverClosedAt === undefined || rec.socket === null) continue;
        if (now - rec.serverClosedAt < this.halfOpenMs) continue;
        rec.halfOpenFlagged = true;
        this.v.add('half-open-stuck', `server ${server.name} conn ${rec.id} (slot ${rec.slot}) still open ${(now - rec.serverClosedAt).toFixed(0)} ms after the server ended it (${rec.closedHow}): its slot stays taken`, rec.closedHow);
      }
    }
  }
}

module.exports = {
  Violations, Tracker, safeMessage, alive,
  kRecord, kLeases, kSeenTrailing, kReturnedPaused,
};
