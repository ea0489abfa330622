'use strict';

// CallosumClient: the connection pool users `require`. Sockets stay here, in a
// table indexed by the native pool's handles; every keep, displace, lend and
// drop decision is taken by the Rust pool (lib/native.js). This class is the
// public surface and the hot path: lending (getConnection, acquire), returns
// (returnConnection) and offers (newConnection), each with its single
// crossing. It reports bad input as 'error' events instead of throwing, since
// its methods are called from I/O callbacks.
//
// Each other concept has a file named for it: lib/handles.js (the handle
// table, its states and marks), lib/native.js (the native bridge and its
// poison flag), lib/socket-watch.js (death detection, the watchdog, drops),
// lib/held-bytes.js (bytes held for idle sockets, the sweep), lib/offers.js
// (adoption, displacement, refusal), lib/waiters.js (waiting and hand-offs),
// lib/close.js (close and drain), lib/returns.js (the uncommon returns), lib/validators.js (argument checks),
// lib/errors.js (the error registry), lib/adaptive.js (servers and timed leases of an adaptive pool).
//
// Shared state: collaborator objects, one of each owned by the client in a
// `#field` and given the others they need (lib/handles.js says why).

const { EventEmitter } = require('node:events');
const { errors, abortError } = require('./errors.js');
const V = require('./validators.js');
const { channels, debug, debugOn } = require('./diagnostics.js');
const { Counters } = require('./counters.js');
const { Lease } = require('./lease.js');
const N = require('./native.js');
const { HandleTable, kHandle, IDLE, LEASED, HANDED } = require('./handles.js');
const { SocketWatch, isDead, deathOf, destroyQuietly } = require('./socket-watch.js');
const { HeldBytes } = require('./held-bytes.js');
const { Offers } = require('./offers.js');
const { Waiting } = require('./waiters.js');
const { Close } = require('./close.js');
const { Returns } = require('./returns.js');
const { Adaptive } = require('./adaptive.js');

const { control, CONTROL_POOL, META_RESULT, META_QUEUE_LEN, META_QUEUE, QUEUE_CAP } = N;

/** @type {typeof Symbol.asyncDispose} */
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose');
/** @type {typeof Symbol.dispose} */
const dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');

class CallosumClient extends EventEmitter {
  #native;
  #table;
  #counters = new Counters();
  #watch;
  #held;
  #offers;
  #waiting;
  #close;
  #returns;
  /** @type {Set<{ stop(): unknown }>} */
  #rovers = new Set();
  #maxWaiting;
  /** @type {Adaptive | null} null unless options.adaptive */
  #adaptive = null;
  // Leases until the next one is timed (lib/adaptive.js); never reached in a
  // pool that is not adaptive.
  #untilTimed = Infinity;
  // The queue length at which a return flushes: an adaptive pool keeps room
  // for a two-word sampled return after every write.
  #flushAt = QUEUE_CAP;
  // Reports bad input without throwing: an 'error' event if anyone listens,
  // otherwise a process warning (an unheard 'error' event would throw).
  /** @param {Error} err */
  #report = (err) => {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err);
  };

  /** @param {{ MAX_SLOTS?: number, maxWaiting?: number, maxHeldBytes?: number, adaptive?: boolean }} [options] */
  constructor(options) {
    super();
    const o = V.readOptions(options, 'CallosumClient: options', V.CLIENT_OPTION_KEYS);
    const maxSlots = V.validateMaxSlots(o.MAX_SLOTS, 'options.MAX_SLOTS');
    this.#maxWaiting = V.validateMaxWaiting(o.maxWaiting, 'options.maxWaiting');
    const maxHeldBytes = V.validateMaxHeldBytes(o.maxHeldBytes, 'options.maxHeldBytes');
    const adaptive = V.validateBoolean(o.adaptive, 'options.adaptive');
    // A poisoned native pool (lib/native.js) is reported once; the pool then
    // behaves as closed, with its sockets destroyed by JavaScript, which still knows them all.
    const native = new N.NativeBridge(maxSlots, adaptive, (err) => {
      this.#report(err);
      if (!this.#close.closed) this.#close.begin(undefined);
    });
    const table = new HandleTable(native.id);
    const settled = () => this.#close.settled();
    const watch = new SocketWatch(this, table, native, this.#counters, this.#report, settled);
    this.#native = native;
    this.#table = table;
    this.#watch = watch;
    this.#held = new HeldBytes(table, watch, this.#counters, maxHeldBytes);
    this.#offers = new Offers(this, table, native, this.#held, watch, this.#counters, this.#report);
    this.#waiting = new Waiting(this, table, this.#counters);
    this.#close = new Close(this, table, native, watch, this.#held, this.#waiting, this.#rovers);
    this.#returns = new Returns(table, native, watch, this.#counters, this.#close, this.#report);
    if (adaptive) {
      this.#adaptive = new Adaptive(table, native, maxSlots);
      this.#untilTimed = 1;
      this.#flushAt = QUEUE_CAP - N.QUEUE_SAMPLE_WORDS + 1;
    }
    this.#held.startSweeping();
    Object.defineProperty(this, 'MAX_SLOTS', { value: maxSlots, enumerable: true });
    /** @type {number} */
    this.MAX_SLOTS;
  }

  /** Slots held: live kept sockets, idle or leased, not displaced. */
  get slotCount() {
    return this.#native.meta[N.META_SLOT_COUNT];
  }

  /** Callers of `acquire()` waiting for a connection. */
  get waiting() {
    return this.#waiting.length;
  }

  get closed() {
    return this.#close.closed;
  }

  /** Whether connections are ranked adaptively (options.adaptive). */
  get adaptive() {
    return this.#adaptive !== null;
  }

  /** Lends the idle live socket with the lowest slot; undefined if none. */
  getConnection() {
    const native = this.#native;
    const meta = native.meta;
    const table = this.#table;
    for (;;) {
      control[CONTROL_POOL] = native.id;
      try {
        N.lease();
      } catch (err) {
        native.fault(err);
        return undefined;
      }
      const h = meta[META_RESULT];
      if (h < 0) return undefined;
      const socket = table.sockets[h];
      try {
        if (isDead(socket)) {
          // Never lend a socket that cannot carry a request.
          this.#watch.drop(h, socket, deathOf(socket), false);
          continue;
        }
        if (table.heldCount !== 0 && table.held[h] !== undefined) this.#held.giveBack(h, socket);
        socket._leased = true;
      } catch (err) {
        this.#watch.dropUnusable(h, socket, err);
        continue;
      }
      table.state[h] = LEASED;
      this.#counters.leases++;
      if (--this.#untilTimed === 0) this.#untilTimed = /** @type {Adaptive} */ (this.#adaptive).timeLease(h);
      return socket;
    }
  }

  /**
   * Takes back a socket lent by `getConnection` or `acquire`.
   * @param {any} socket
   */
  returnConnection(socket) {
    const table = this.#table;
    let h;
    try {
      h = socket[kHandle];
      if (
        h === undefined ||
        table.sockets[h] !== socket ||
        table.state[h] !== LEASED ||
        this.#close.closed ||
        isDead(socket)
      ) {
        this.#returns.uncommon(socket, h);
        return;
      }
    } catch (err) {
      // null, undefined, a revoked Proxy, a throwing getter on a kept socket.
      this.#returns.unreadable(socket, h, err);
      return;
    }
    this.#counters.returns++;
    if (this.#waiting.length !== 0) {
      // Straight to the oldest waiter: it stays lent, nothing goes idle.
      this.#handOff(h, socket);
      return;
    }
    try {
      socket._leased = false;
      // Unread bytes left on it would hide a FIN from the pool: hold them,
      // or drop the socket if there are more than the pool holds.
      if (socket.readableLength > 0 && !this.#held.hold(h, socket)) {
        this.#held.dropFlooded(h, socket);
        return;
      }
    } catch (err) {
      this.#watch.dropUnusable(h, socket, err);
      return;
    }
    table.state[h] = IDLE;
    // A timed lease's return carries its duration (lib/adaptive.js).
    if (table.timed !== 0 && table.lentAt[h] > 0) {
      /** @type {Adaptive} */ (this.#adaptive).queueSample(h, false);
      return;
    }
    // Queue the return; the next crossing into Rust applies it. Written here,
    // not behind a NativeBridge method: that call cost ~30 ns a get+return.
    const meta = this.#native.meta;
    const n = meta[META_QUEUE_LEN];
    meta[META_QUEUE + n] = h;
    meta[META_QUEUE_LEN] = n + 1;
    if (n + 1 >= this.#flushAt) this.#native.call(N.flush);
  }

  /**
   * Offers a new connection on `slot` (from a rover). The pool keeps it,
   * possibly displacing its highest slot, or destroys it. `serverId` (the
   * rover's 'connection' event passes it third) names the connection's
   * server to an adaptive pool; without it, the socket's remote address:port.
   * @param {number} slot
   * @param {any} socket
   * @param {unknown} [serverId]
   */
  newConnection(slot, socket, serverId) {
    const offers = this.#offers;
    if (!offers.admit(slot, socket, this.#close.closed)) return;
    // A full pool refuses its highest kept slot and above: Rust publishes
    // that slot after every call (Infinity while there is room), and the kept
    // set changes only in a call, so most refusals need no crossing.
    const native = this.#native;
    const io = native.io;
    const refuseFrom = io[N.IO_REFUSE_FROM];
    if (slot >= refuseFrom) {
      offers.refuse(slot, socket, 'full', refuseFrom);
      return;
    }
    // With callers waiting, a kept socket goes to the oldest at once.
    const handOff = this.#waiting.length !== 0;
    io[N.IO_SLOT] = slot;
    io[N.IO_LEASE] = handOff ? 1 : 0;
    const adaptive = this.#adaptive;
    const server =
      adaptive === null ? 0 : adaptive.serverIndex(socket, typeof serverId === 'string' ? serverId : undefined);
    io[N.IO_SERVER] = server;
    if (!native.call(N.offer)) {
      destroyQuietly(socket);
      return;
    }
    const code = native.meta[META_RESULT];
    if (code !== N.OFFER_KEPT) {
      const full = code === N.OFFER_FULL;
      // OFFER_BAD_SLOT cannot happen (the slot was checked here): if it does, say so.
      const reason = full ? 'full' : code === N.OFFER_CLOSED ? 'closed' : 'invalid-slot';
      offers.refuse(slot, socket, reason, full ? io[N.IO_VICTIM_SLOT] : null);
      return;
    }
    const h = io[N.IO_HANDLE];
    const victim = io[N.IO_VICTIM];
    const victimSlot = io[N.IO_VICTIM_SLOT];
    const victimLeased = io[N.IO_VICTIM_LEASED] === 1;
    try {
      offers.adopt(h, slot, socket, handOff ? HANDED : IDLE);
    } catch (err) {
      // A setter or on() that throws: kept in Rust a moment, now dropped,
      // and the socket it displaced is put back as it was.
      this.#watch.dropUnusable(h, socket, err);
      if (victim >= 0) offers.restore(victim, victimSlot, victimLeased);
      return;
    }
    if (adaptive !== null) adaptive.kept(h, server);
    this.#counters.offersKept++;
    if (victim >= 0) this.#counters.offersDisplacing++;
    if (debugOn) debug('kept slot %d (handle %d), %d slots held', slot, h, this.slotCount);
    if (channels.kept.hasSubscribers) {
      channels.kept.publish({ client: this, slot, socket, displacedSlot: victim >= 0 ? victimSlot : null });
    }
    if (victim >= 0) offers.displace(victim, victimSlot, victimLeased);
    if (handOff) {
      socket._leased = true;
      this.#handOff(h, socket);
    }
  }

  /**
   * Hands a lent socket to the oldest waiter of acquire(): a lease ends (if
   * timed, its duration goes to Rust; the socket stays lent) and one begins.
   * @param {number} h
   * @param {any} socket
   */
  #handOff(h, socket) {
    if (this.#table.timed !== 0 && this.#table.lentAt[h] > 0) {
      /** @type {Adaptive} */ (this.#adaptive).queueSample(h, true);
    }
    this.#waiting.handTo(h, socket);
    if (--this.#untilTimed === 0) this.#untilTimed = /** @type {Adaptive} */ (this.#adaptive).timeLease(h);
  }

  /**
   * Internal in the original; here the same as `newConnection`.
   * @param {number} slot
   * @param {any} socket
   */
  insertSocket(slot, socket) {
    this.newConnection(slot, socket);
  }

  /**
   * A promise of a leased socket: at once if one is idle, otherwise after
   * waiting in a first-come, first-served queue.
   * @param {{ timeout?: number, signal?: AbortSignal }} [options]
   */
  acquire(options) {
    let timeout;
    let signal;
    if (options !== undefined) {
      try {
        const o = V.readOptions(options, 'acquire: options', ['timeout', 'signal']);
        timeout = V.validateTimeout(o.timeout, 'acquire: options.timeout');
        signal = V.validateAbortSignal(o.signal, 'acquire: options.signal');
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.#close.closed) return Promise.reject(errors.ERR_CALLOSUM_CLOSED(false));
    if (signal?.aborted) {
      this.#counters.acquiresAborted++;
      return Promise.reject(abortError(signal));
    }
    const waiting = this.#waiting;
    // While anyone waits nothing is idle (returns and new sockets go to the
    // waiters), so a caller behind them joins the queue without a crossing.
    if (waiting.length === 0) {
      const socket = this.getConnection();
      if (socket !== undefined) {
        this.#counters.acquiresImmediate++;
        return Promise.resolve(socket);
      }
      if (this.#close.closed) return Promise.reject(errors.ERR_CALLOSUM_CLOSED(false));
    }
    if (waiting.length >= this.#maxWaiting) {
      this.#counters.acquiresQueueFull++;
      return Promise.reject(errors.ERR_CALLOSUM_QUEUE_FULL(waiting.length, this.#maxWaiting));
    }
    return waiting.wait(timeout, signal);
  }

  /**
   * acquire(), as a Lease: `{ socket, release() }`. A lease is given back
   * once; a second release() is refused whoever holds the socket since.
   * @param {{ timeout?: number, signal?: AbortSignal }} [options]
   */
  async lease(options) {
    return new Lease(this, await this.acquire(options), this.#report);
  }

  /**
   * Shuts the pool down: idle sockets are destroyed now, leased ones when
   * returned, waiters rejected, rovers stopped; offered sockets are destroyed
   * from now on. Returns a promise that resolves once no socket the pool
   * owned is left open (every lent one returned, or dead). With
   * `{ timeout }` (ms) it rejects with ERR_CALLOSUM_CLOSE_TIMEOUT at the
   * deadline, after destroying the sockets still out. Calling it again
   * returns the same promise.
   * @param {{ timeout?: number }} [options]
   * @returns {Promise<void>}
   */
  close(options) {
    let timeout;
    try {
      const o = V.readOptions(options, 'close: options', ['timeout']);
      timeout = V.validateTimeout(o.timeout, 'close: options.timeout');
    } catch (err) {
      // Closing must not fail for a bad option: close without a deadline.
      this.#report(/** @type {Error} */ (err));
      timeout = undefined;
    }
    return this.#close.begin(timeout);
  }

  /** `await using client = new CallosumClient()`: close() and wait for the sockets still out. */
  [asyncDispose]() {
    return this.close();
  }

  /** `using client = ...`: close() (leased sockets are destroyed when returned). */
  [dispose]() {
    this.close();
  }

  /**
   * Connects a rover to this pool: every connection it makes is offered here,
   * its errors are re-emitted here, and `close()` stops it.
   * @param {any} servers
   * @param {object} [options]
   */
  rove(servers, options) {
    const Rover = require('./rover/index.js');
    const rover = new Rover({ ...V.readOptions(options, 'rove: options', V.ROVER_OPTION_KEYS), servers });
    rover.on('connection', (/** @type {number} */ slot, /** @type {any} */ socket, /** @type {string} */ id) =>
      this.newConnection(slot, socket, id),
    );
    rover.on('error', (/** @type {Error} */ err) => this.#report(err));
    rover.on('unreachable', (/** @type {string} */ id, /** @type {unknown} */ server) => {
      this.emit('unreachable', id, server);
    });
    if (this.#close.closed) return rover; // never started: close() stopped the rest
    this.#rovers.add(rover);
    rover.start();
    return rover;
  }

  /** Counts to log or export: the pool as it is now. */
  stats() {
    const s = this.#native.stats();
    return {
      maxSlots: this.MAX_SLOTS,
      slotCount: s === null ? 0 : s.slotCount,
      idle: s === null ? 0 : s.idle,
      leased: s === null ? 0 : s.leased,
      displaced: s === null ? 0 : s.displaced,
      lowestSlot: s?.lowest ?? null,
      highestSlot: s?.highest ?? null,
      waiting: this.#waiting.length,
      heldBytes: this.#table.heldBytes,
      maxHeldBytes: this.#held.max,
      closed: this.#close.closed,
    };
  }

  /**
   * An adaptive pool's servers: per server, the connections held, leases,
   * the lease-time estimate and the weight its slots are scaled by. Empty
   * for a pool that is not adaptive.
   */
  servers() {
    return this.#adaptive === null ? [] : this.#adaptive.servers();
  }

  /** What the pool has done since it was made: monotonic counts (README lists them). */
  counters() {
    return this.#counters.snapshot();
  }
}

module.exports = { CallosumClient };
