'use strict';

// CallosumClient: the connection pool users `require`. Sockets stay here, in a
// table indexed by the native pool's handles; every keep, displace, lend and
// drop decision is taken by the Rust pool (lib/native.js). This class watches
// the sockets, checks arguments, and reports bad input as 'error' events
// instead of throwing, since its methods are called from I/O callbacks.

const { EventEmitter } = require('node:events');
const { debuglog, types } = require('node:util');
const { codedError, describe, abortError, readOptions } = require('./errors.js');
const { Waiter, WaitQueue } = require('./waiters.js');
const { channels } = require('./diagnostics.js');
const { Counters } = require('./counters.js');
const { Lease } = require('./lease.js');
const sweeper = require('./sweeper.js');
const N = require('./native.js');

let debug = debuglog('callosum', (fn) => {
  debug = fn;
});
// Read once: decision logging costs one branch when NODE_DEBUG is off.
const debugOn = debug.enabled;

const DEFAULT_MAX_SLOTS = 100;
// Bytes held for one idle socket before it is dropped as flooded: a banner is
// tens of bytes, a late reply a few KiB; 64 KiB is that with a wide margin,
// and one socket read (README, "Memory").
const DEFAULT_MAX_HELD_BYTES = 64 * 1024;
const { FREE, IDLE, LEASED, DISPLACED, control, CONTROL_POOL } = N;
// Handed to a waiter of acquire(), whose code has not run yet: still lent,
// but a return now is the previous holder's second return (see #handTo).
const HANDED = 4;

// The handle a socket holds in the pool that keeps it. One module-wide key, so
// a socket's shape stays the same whichever pool it passes through.
const kHandle = Symbol('callosum.handle');
// A socket that died while lent out keeps, under kHandle, a negative mark
// naming the pool that owes it one quiet return (a mark in the same property,
// not one more: a new property would change the socket's shape again).

const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose');
const dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');

function checkMaxSlots(value) {
  // Falsy (absent, 0, '', null...) means the default, as in the original.
  if (!value) return DEFAULT_MAX_SLOTS;
  if (typeof value !== 'number') {
    throw codedError('ERR_INVALID_ARG_TYPE', `options.MAX_SLOTS must be a number, received ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw codedError('ERR_OUT_OF_RANGE', `options.MAX_SLOTS must be a positive safe integer, received ${describe(value)}`);
  }
  return value;
}

function checkMaxWaiting(value) {
  if (value === undefined || value === Infinity) return Infinity;
  if (typeof value !== 'number') {
    throw codedError('ERR_INVALID_ARG_TYPE', `options.maxWaiting must be a number, received ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw codedError('ERR_OUT_OF_RANGE',
      `options.maxWaiting must be a non-negative integer or Infinity, received ${describe(value)}`);
  }
  return value;
}

function checkMaxHeldBytes(value) {
  if (value === undefined) return DEFAULT_MAX_HELD_BYTES;
  if (typeof value !== 'number') {
    throw codedError('ERR_INVALID_ARG_TYPE', `options.maxHeldBytes must be a number, received ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw codedError('ERR_OUT_OF_RANGE',
      `options.maxHeldBytes must be a non-negative safe integer, received ${describe(value)}`);
  }
  return value;
}

function noop() {}

// The longest delay setTimeout honours; Node turns longer ones into 1 ms.
const TIMEOUT_MAX = 2 ** 31 - 1;

// A time-out option: undefined, Infinity, or 0..TIMEOUT_MAX ms; else a coded error.
function checkTimeout(where, value) {
  if (value === undefined || (typeof value === 'number' && value >= 0 && (value <= TIMEOUT_MAX || value === Infinity))) {
    return undefined;
  }
  return typeof value === 'number'
    ? codedError('ERR_OUT_OF_RANGE', `${where}: options.timeout must be a number of ms from 0 to ${TIMEOUT_MAX}, or Infinity, received ${describe(value)}`)
    : codedError('ERR_INVALID_ARG_TYPE', `${where}: options.timeout must be a number of ms, received ${describe(value)}`);
}

// A socket, as far as the pool needs one: it can be watched, destroyed and
// marked. Never a Proxy (no net.Socket is one, and its traps could throw at
// any later step, even inside Node's own destroy()); not frozen or sealed (the
// marks could not be set, and a frozen net.Socket throws from inside
// destroy()); a getter that throws makes it not a socket instead of a throw.
function isSocketLike(value) {
  if (value === null || typeof value !== 'object' || types.isProxy(value)) return false;
  try {
    return typeof value.on === 'function' && typeof value.destroy === 'function' &&
      Object.isExtensible(value);
  } catch {
    return false;
  }
}

function isAbortSignal(value) {
  if (value === null || typeof value !== 'object' || types.isProxy(value)) return false;
  try {
    return typeof value.aborted === 'boolean' && typeof value.addEventListener === 'function' &&
      typeof value.removeEventListener === 'function';
  } catch {
    return false;
  }
}

// Whether a kept socket can still carry a request. `destroyed` covers a
// socket destroyed before its 'close' (D6); `writableEnded` one its user
// end()ed before giving it back. A peer's FIN normally gives 'end' at once,
// but not while unread bytes sit in the socket's buffer (bytes that came
// after the slot line, or late ones): then the stream knows the peer ended
// (`_readableState.ended`) and says nothing until read.
function isDead(socket) {
  if (socket.destroyed === true || socket.writableEnded === true) return true;
  return socket.readableLength > 0 && socket._readableState?.ended === true;
}

// Why a socket isDead() is dropped, as 'dropped' messages say it.
function deathOf(socket) {
  return socket.destroyed === true ? 'destroyed' : 'peer-ended';
}

let reportOf;

class CallosumClient extends EventEmitter {
  #native;
  #id; // names this pool to the shared native entry points
  #io;
  #meta;
  // By handle: the socket, and its state as JavaScript last left it (IDLE,
  // LEASED, HANDED or DISPLACED; a queued return counts as IDLE).
  #sockets = [];
  #state = [];
  // By handle: bytes taken out of an idle socket's buffer, given back to the
  // first user it is lent to (see #hold); #heldCount of them are set, holding
  // #heldBytes in all, at most #maxHeldBytes each.
  #held = [];
  #heldCount = 0;
  #heldBytes = 0;
  #maxHeldBytes;
  #waiters = new WaitQueue();
  #maxWaiting;
  #closed = false;
  #poisoned = false;
  #closing = null; // the promise close() returns, once called
  #rovers = new Set();
  #counters = new Counters();
  #diedMark; // see kHandle
  #swept; // this pool's place in lib/sweeper.js
  // The listener for 'end', 'error' and 'close' of every kept socket: one
  // function per pool, not a closure per socket (EventEmitter calls it with
  // the socket as `this`, and the event's argument tells which it was).
  #watchdog = (() => {
    const pool = this;
    return function watchdog(arg) {
      if (typeof this === 'object' && this !== null) {
        pool.#onGone(this, arg instanceof Error ? 'error' : typeof arg === 'boolean' ? 'close' : 'end', arg);
      }
    };
  })();

  constructor(options) {
    super();
    options = readOptions('CallosumClient', options, ['MAX_SLOTS', 'maxWaiting', 'maxHeldBytes']);
    const maxSlots = checkMaxSlots(options.MAX_SLOTS);
    this.#maxWaiting = checkMaxWaiting(options.maxWaiting);
    this.#maxHeldBytes = checkMaxHeldBytes(options.maxHeldBytes);
    const native = N.createNative(maxSlots);
    this.#native = native.pool;
    this.#id = native.id;
    this.#io = native.io;
    this.#meta = native.meta;
    this.#diedMark = -1 - native.id;
    this.#swept = sweeper.watch(this.#sweepTarget);
    Object.defineProperty(this, 'MAX_SLOTS', { value: maxSlots, enumerable: true });
  }

  /** Slots held: live kept sockets, idle or leased, not displaced. */
  get slotCount() {
    return this.#meta[N.META_SLOT_COUNT];
  }

  /** Callers of `acquire()` waiting for a connection. */
  get waiting() {
    return this.#waiters.length;
  }

  get closed() {
    return this.#closed;
  }

  /** Lends the idle live socket with the lowest slot; undefined if none. */
  getConnection() {
    const meta = this.#meta;
    for (;;) {
      control[CONTROL_POOL] = this.#id;
      try {
        N.lease();
      } catch (err) {
        this.#nativeFault(err);
        return undefined;
      }
      const h = meta[N.META_RESULT];
      if (h < 0) return undefined;
      const socket = this.#sockets[h];
      try {
        if (isDead(socket)) {
          // Never lend a socket that cannot carry a request.
          this.#drop(h, socket, deathOf(socket), false);
          continue;
        }
        if (this.#heldCount !== 0 && this.#held[h] !== undefined) this.#giveBack(h, socket);
        socket._leased = true;
      } catch (err) {
        this.#dropUnusable(h, socket, err);
        continue;
      }
      this.#state[h] = LEASED;
      this.#counters.leases++;
      return socket;
    }
  }

  /** Takes back a socket lent by `getConnection` or `acquire`. */
  returnConnection(socket) {
    let h;
    try {
      h = socket[kHandle];
      if (h === undefined || this.#sockets[h] !== socket || this.#state[h] !== LEASED ||
          this.#closed || isDead(socket)) {
        this.#returnUncommon(socket, h);
        return;
      }
    } catch (err) {
      // null, undefined, a revoked Proxy, a throwing getter on a kept socket.
      this.#returnUnreadable(socket, h, err);
      return;
    }
    this.#counters.returns++;
    if (this.#waiters.length !== 0) {
      // Straight to the oldest waiter: it stays lent, nothing goes idle.
      this.#handTo(this.#waiters.shift(), h, socket);
      return;
    }
    try {
      socket._leased = false;
      // Unread bytes left on it would hide a FIN from the pool: hold them,
      // or drop the socket if there are more than the pool holds.
      if (socket.readableLength > 0 && !this.#hold(h, socket)) {
        this.#dropFlooded(h, socket);
        return;
      }
    } catch (err) {
      this.#dropUnusable(h, socket, err);
      return;
    }
    this.#state[h] = IDLE;
    // Queue the return; the next crossing into Rust applies it.
    const meta = this.#meta;
    const n = meta[N.META_QUEUE_LEN];
    meta[N.META_QUEUE + n] = h;
    meta[N.META_QUEUE_LEN] = n + 1;
    if (n + 1 === N.QUEUE_CAP) this.#callNative(N.flush);
  }

  /**
   * Offers a new connection on `slot` (from a rover). The pool keeps it,
   * possibly displacing its highest slot, or destroys it.
   */
  newConnection(slot, socket) {
    if (!isSocketLike(socket)) {
      this.#report(codedError('ERR_CALLOSUM_NOT_A_SOCKET',
        `newConnection: socket must be a socket (with on() and destroy()), received ${describe(socket)}`));
      return;
    }
    let held;
    try {
      held = socket[kHandle] !== undefined;
    } catch {
      held = true; // a getter on our own key: not a socket we can trust
    }
    if (held) {
      // Already in this pool or another one: leave it where it is.
      this.#report(codedError('ERR_CALLOSUM_SOCKET_HELD',
        `newConnection: this socket is already held by a pool (${describe(socket)}); not offered again`));
      return;
    }
    if (typeof slot !== 'number' || !Number.isSafeInteger(slot) || slot < 0) {
      this.#destroyQuietly(socket);
      this.#counters.offersRefused++;
      if (channels.refused.hasSubscribers) {
        channels.refused.publish({ client: this, slot, socket, reason: 'invalid-slot', highestSlot: null });
      }
      this.#report(codedError('ERR_CALLOSUM_INVALID_SLOT',
        `newConnection: slot must be a non-negative safe integer, received ${describe(slot)}; socket destroyed`));
      return;
    }
    let dead;
    try {
      dead = socket.destroyed === true;
    } catch {
      dead = true;
    }
    if (dead || this.#closed) {
      this.#refuse(slot, socket, dead ? 'destroyed' : 'closed', null);
      return;
    }
    // More unread bytes than the pool would hold for it (bytes that came
    // with or after the slot line): refused before it can displace anyone.
    if (this.#unreadOf(socket) > this.#maxHeldBytes) {
      this.#refuse(slot, socket, 'flooded', null);
      return;
    }
    // A full pool refuses its highest kept slot and above: Rust publishes
    // that slot after every call (Infinity while there is room), and the kept
    // set changes only in a call, so most refusals need no crossing.
    const io = this.#io;
    const refuseFrom = io[N.IO_REFUSE_FROM];
    if (slot >= refuseFrom) {
      this.#refuse(slot, socket, 'full', refuseFrom);
      return;
    }
    // With callers waiting, a kept socket goes to the oldest at once.
    const handOff = this.#waiters.length !== 0;
    io[N.IO_SLOT] = slot;
    io[N.IO_LEASE] = handOff ? 1 : 0;
    if (!this.#callNative(N.offer)) {
      this.#destroyQuietly(socket);
      return;
    }
    const code = this.#meta[N.META_RESULT];
    if (code !== N.OFFER_KEPT) {
      const full = code === N.OFFER_FULL;
      // OFFER_BAD_SLOT cannot happen (the slot was checked here): if it does, say so.
      this.#refuse(slot, socket, full ? 'full' : code === N.OFFER_CLOSED ? 'closed' : 'invalid-slot',
        full ? io[N.IO_VICTIM_SLOT] : null);
      return;
    }
    const h = io[N.IO_HANDLE];
    const victim = io[N.IO_VICTIM];
    const victimSlot = io[N.IO_VICTIM_SLOT];
    const victimLeased = io[N.IO_VICTIM_LEASED] === 1;
    try {
      this.#adopt(h, slot, socket, handOff ? HANDED : IDLE);
    } catch (err) {
      // A setter or on() that throws: kept in Rust a moment, now dropped,
      // and the socket it displaced is put back as it was.
      this.#dropUnusable(h, socket, err);
      if (victim >= 0) this.#restore(victim, victimSlot, victimLeased);
      return;
    }
    this.#counters.offersKept++;
    if (victim >= 0) this.#counters.offersDisplacing++;
    if (debugOn) debug('kept slot %d (handle %d), %d slots held', slot, h, this.slotCount);
    if (channels.kept.hasSubscribers) {
      channels.kept.publish({ client: this, slot, socket, displacedSlot: victim >= 0 ? victimSlot : null });
    }
    if (victim >= 0) this.#displace(victim, victimSlot, victimLeased);
    if (handOff) {
      socket._leased = true;
      this.#handTo(this.#waiters.shift(), h, socket);
      return;
    }
  }

  /** Internal in the original; here the same as `newConnection`. */
  insertSocket(slot, socket) {
    this.newConnection(slot, socket);
  }

  /**
   * A promise of a leased socket: at once if one is idle, otherwise after
   * waiting in a first-come, first-served queue.
   */
  acquire(options) {
    let timeout;
    let signal;
    if (options !== undefined) {
      try {
        ({ timeout, signal } = readOptions('acquire', options, ['timeout', 'signal']));
      } catch (err) {
        return Promise.reject(err);
      }
      const bad = checkTimeout('acquire', timeout);
      if (bad !== undefined) return Promise.reject(bad);
      if (signal !== undefined && !isAbortSignal(signal)) {
        return Promise.reject(codedError('ERR_INVALID_ARG_TYPE',
          `acquire: options.signal must be an AbortSignal, received ${describe(signal)}`));
      }
    }
    if (this.#closed) {
      return Promise.reject(codedError('ERR_CALLOSUM_CLOSED', 'acquire: the pool is closed'));
    }
    if (signal !== undefined && signal.aborted) {
      this.#counters.acquiresAborted++;
      return Promise.reject(abortError(signal));
    }
    // While anyone waits nothing is idle (returns and new sockets go to the
    // waiters), so a caller behind them joins the queue without a crossing.
    if (this.#waiters.length === 0) {
      const socket = this.getConnection();
      if (socket !== undefined) {
        this.#counters.acquiresImmediate++;
        return Promise.resolve(socket);
      }
      if (this.#closed) {
        return Promise.reject(codedError('ERR_CALLOSUM_CLOSED', 'acquire: the pool is closed'));
      }
    }
    if (this.#waiters.length >= this.#maxWaiting) {
      this.#counters.acquiresQueueFull++;
      return Promise.reject(codedError('ERR_CALLOSUM_QUEUE_FULL',
        `acquire: ${this.#waiters.length} callers already waiting (maxWaiting ${this.#maxWaiting})`));
    }
    return this.#wait(timeout, signal);
  }

  /**
   * acquire(), as a Lease: `{ socket, release() }`. A lease is given back
   * once; a second release() is refused whoever holds the socket since.
   */
  async lease(options) {
    return new Lease(this, await this.acquire(options), reportOf);
  }

  static {
    // For Lease (lib/lease.js): reports as the pool's own methods do.
    reportOf = (client, err) => client.#report(err);
  }

  // What lib/sweeper.js calls (an object of its own, so that the pool's
  // public surface gains no method).
  #sweepTarget = { sweep: () => this.#sweep() };

  // Each idle socket with unread bytes: the bytes are held (see #hold), so a
  // FIN behind them gives 'end' and the socket is dropped; one found dead is
  // dropped now. Only sockets with bytes in their buffer are touched.
  #sweep() {
    const state = this.#state;
    for (let h = 0; h < state.length; h++) {
      if (state[h] !== IDLE) continue;
      const socket = this.#sockets[h];
      try {
        if (socket.readableLength > 0) {
          if (isDead(socket)) this.#drop(h, socket, deathOf(socket), false);
          else if (!this.#hold(h, socket)) this.#dropFlooded(h, socket);
        }
      } catch (err) {
        this.#dropUnusable(h, socket, err);
      }
    }
  }

  // Joins the queue. Apart from acquire() so that its closures don't cost
  // the immediate path a context allocation.
  #wait(timeout, signal) {
    const promise = new Promise((resolve, reject) => {
      const waiter = new Waiter(resolve, reject);
      if (signal !== undefined) {
        const onAbort = () => {
          if (this.#waiters.remove(waiter)) {
            this.#counters.acquiresAborted++;
            reject(abortError(signal));
          }
        };
        try {
          signal.addEventListener('abort', onAbort, { once: true });
        } catch (err) {
          reject(codedError('ERR_INVALID_ARG_TYPE',
            `acquire: options.signal refused a listener (${describe(err)})`, { cause: err }));
          return;
        }
        waiter.signal = signal;
        waiter.onAbort = onAbort;
      }
      if (timeout !== undefined && timeout !== Infinity) {
        waiter.timer = setTimeout(() => {
          if (this.#waiters.remove(waiter)) {
            this.#counters.acquiresTimedOut++;
            if (channels.acquireTimeout.hasSubscribers) {
              channels.acquireTimeout.publish({ client: this, timeout, waiting: this.#waiters.length });
            }
            reject(codedError('ERR_CALLOSUM_ACQUIRE_TIMEOUT', `acquire: no connection within ${timeout} ms`));
          }
        }, timeout);
      }
      this.#waiters.push(waiter);
    });
    // Registered before the caller can register anything: see #handTo.
    promise.then(this.#received, noop);
    return promise;
  }

  /**
   * Shuts the pool down: idle sockets are destroyed now, leased ones when
   * returned, waiters rejected, rovers stopped; offered sockets are destroyed
   * from now on. Returns a promise that resolves once no socket the pool
   * owned is left open (every lent one returned, or dead). With
   * `{ timeout }` (ms) it rejects with ERR_CALLOSUM_CLOSE_TIMEOUT at the
   * deadline, after destroying the sockets still out. Calling it again
   * returns the same promise.
   */
  close(options) {
    let timeout;
    try {
      ({ timeout } = readOptions('close', options, ['timeout']));
      const bad = checkTimeout('close', timeout);
      if (bad !== undefined) throw bad;
    } catch (err) {
      // Closing must not fail for a bad option: close without a deadline.
      this.#report(err);
      timeout = undefined;
    }
    if (this.#closing === null) this.#beginClose(timeout);
    return this.#closing;
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
   */
  rove(servers, options) {
    const Rover = require('./rover.js');
    const rover = new Rover({
      ...readOptions('rove', options, ['ROVING_INTERVAL', 'connectTimeout', 'handshakeTimeout',
        'backOffUnreachable', 'maxBackoff', 'random', 'now']),
      servers,
    });
    rover.on('connection', (slot, socket) => this.newConnection(slot, socket));
    rover.on('error', (err) => this.#report(err));
    rover.on('unreachable', (id, server) => this.emit('unreachable', id, server));
    if (this.#closed) return rover; // never started: close() stopped the rest
    this.#rovers.add(rover);
    rover.start();
    return rover;
  }

  /** Counts to log or export: the pool as it is now. */
  stats() {
    const s = this.#nativeStats();
    return {
      maxSlots: this.MAX_SLOTS,
      slotCount: s === null ? 0 : s.slotCount,
      idle: s === null ? 0 : s.idle,
      leased: s === null ? 0 : s.leased,
      displaced: s === null ? 0 : s.displaced,
      lowestSlot: s?.lowest ?? null,
      highestSlot: s?.highest ?? null,
      waiting: this.#waiters.length,
      heldBytes: this.#heldBytes,
      maxHeldBytes: this.#maxHeldBytes,
      closed: this.#closed,
    };
  }

  /** What the pool has done since it was made: monotonic counts (README lists them). */
  counters() {
    return this.#counters.snapshot();
  }

  // -- internals -----------------------------------------------------------

  // Reports bad input without throwing: an 'error' event if anyone listens,
  // otherwise a process warning (an unheard 'error' event would throw).
  #report(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err);
  }

  // A rare native call (flush, offer, release, remove): false if the pool is
  // poisoned, now or from before.
  #callNative(entry) {
    if (this.#poisoned) return false;
    control[CONTROL_POOL] = this.#id;
    try {
      entry();
      return true;
    } catch (err) {
      this.#nativeFault(err);
      return false;
    }
  }

  // A native call threw: the pool is poisoned (a panic in Rust) and refuses
  // every later call. Reported once; the pool then behaves as closed, with
  // its sockets destroyed by JavaScript, which still knows them all.
  #nativeFault(err) {
    if (this.#poisoned) return;
    this.#poisoned = true;
    if (typeof err !== 'object' || err === null || typeof err.code !== 'string') {
      err = codedError('ERR_CALLOSUM_POISONED', `native pool failed: ${describe(err)}`, { cause: err });
    }
    this.#report(err);
    if (this.#closing === null) this.#beginClose(undefined);
  }

  // Shuts down and keeps the promise of the drain, once (close() and a
  // poisoned pool both come here).
  #beginClose(timeout) {
    this.#shutDown();
    this.#closing = this.#drained(timeout);
    // Nobody has to await it; its rejection is only for those who do.
    this.#closing.catch(() => {});
  }

  // close() minus the waiting: no more lending or keeping, idle sockets
  // destroyed, waiters rejected, rovers stopped.
  #shutDown() {
    this.#closed = true;
    sweeper.unwatch(this.#swept);
    for (const rover of this.#rovers) rover.stop();
    this.#rovers.clear();
    if (!this.#poisoned) {
      try {
        this.#native.close();
      } catch (err) {
        this.#nativeFault(err);
      }
    }
    // JavaScript knows every socket's state: destroy the idle ones here
    // (also when the native pool can no longer be asked).
    for (let h = 0; h < this.#state.length; h++) {
      if (this.#state[h] === IDLE) this.#discard(h, this.#sockets[h]);
    }
    for (let w = this.#waiters.shift(); w !== null; w = this.#waiters.shift()) {
      w.reject(codedError('ERR_CALLOSUM_CLOSED', 'acquire: the pool was closed while waiting'));
    }
    const leased = this.#outstanding();
    if (debugOn) debug('closed; %d leased sockets to destroy when returned', leased);
    if (channels.closed.hasSubscribers) channels.closed.publish({ client: this, leased });
  }

  // Sockets still out with users (leased, handed or displaced).
  #outstanding() {
    let n = 0;
    for (const s of this.#state) if (s === LEASED || s === HANDED || s === DISPLACED) n++;
    return n;
  }

  // Resolves when no socket the pool owned is out; with a timeout, rejects at
  // the deadline after destroying what is still out.
  #drained(timeout) {
    return new Promise((resolve, reject) => {
      let timer;
      const check = () => {
        if (this.#outstanding() !== 0) return false;
        if (timer !== undefined) clearTimeout(timer);
        this.#onDrained = null;
        // Destroyed sockets close on the next turn of the loop.
        setImmediate(resolve);
        return true;
      };
      if (check()) return;
      this.#onDrained = check;
      if (timeout !== undefined && timeout !== Infinity) {
        timer = setTimeout(() => {
          this.#onDrained = null;
          const out = [];
          for (let h = 0; h < this.#state.length; h++) {
            const s = this.#state[h];
            if (s === LEASED || s === HANDED || s === DISPLACED) out.push(h);
          }
          for (const h of out) {
            const socket = this.#sockets[h];
            this.#forget(h, socket);
            this.#markDiedLent(socket);
            this.#destroyQuietly(socket);
          }
          reject(codedError('ERR_CALLOSUM_CLOSE_TIMEOUT',
            `close: ${out.length} sockets still out after ${timeout} ms were destroyed`, { leased: out.length }));
        }, timeout);
      }
    });
  }

  #onDrained = null;

  #returnUncommon(socket, h) {
    if (h !== undefined && this.#sockets[h] === socket) {
      const state = this.#state[h];
      if (state === DISPLACED || (state === LEASED && this.#closed)) {
        // Its slot went to a lower one, or the pool closed: destroy it.
        this.#counters.returns++;
        this.#releaseHandle(h);
        this.#discard(h, socket);
        if (debugOn) debug('destroyed returned slot %d (%s)', socket._slot, state === DISPLACED ? 'displaced' : 'closed');
        this.#onDrained?.();
        return;
      }
      if (state === LEASED) {
        // Dead while lent (destroyed, or its peer gone): drop it now.
        this.#counters.returns++;
        this.#drop(h, socket, deathOf(socket), false);
        return;
      }
    } else if (h === this.#diedMark) {
      // It died while lent out and was dropped then; this is its one return.
      // After an 'end' it may still be half open: the pool owned it, so close it.
      socket[kHandle] = undefined;
      socket._leased = false;
      this.#counters.returns++;
      this.#destroyQuietly(socket);
      return;
    }
    const handed = h !== undefined && this.#sockets[h] === socket && this.#state[h] === HANDED;
    this.#report(codedError('ERR_CALLOSUM_NOT_LEASED',
      `returnConnection: ${describe(socket)} is not a socket lent by this pool` +
      (handed ? ' (it was just handed to a waiter of acquire(): returned twice?)'
        : h !== undefined && this.#sockets[h] === socket ? ' (it is idle: returned twice?)' : '')));
  }

  // returnConnection got something that threw when read.
  #returnUnreadable(socket, h, err) {
    if (h !== undefined && this.#sockets[h] === socket) {
      // One of ours, lent or idle, that now throws: it cannot be trusted.
      this.#dropUnusable(h, socket, err);
      return;
    }
    this.#report(codedError('ERR_CALLOSUM_NOT_LEASED',
      `returnConnection: ${describe(socket)} is not a socket lent by this pool`));
  }

  // Hands a socket to the oldest waiter. Until the waiter's code can run the
  // socket is HANDED: a return then is its previous holder's second return
  // (in the same tick, say), refused as NOT_LEASED. #received marks it lent:
  // it is the first reaction on the waiter's promise (#wait), so it runs
  // before the caller's own code, and a waiter's own return is always
  // accepted.
  #handTo(waiter, h, socket) {
    this.#state[h] = HANDED;
    this.#counters.leases++;
    waiter.resolve(socket);
  }

  #received = (socket) => {
    this.#counters.acquiresAfterWait++;
    const h = socket[kHandle];
    if (h !== undefined && this.#sockets[h] === socket && this.#state[h] === HANDED) this.#state[h] = LEASED;
  };

  #adopt(h, slot, socket, state) {
    this.#sockets[h] = socket;
    this.#state[h] = state;
    socket[kHandle] = h;
    socket._slot = slot;
    socket._leased = false;
    socket._destroyed = false;
    // One listener for all three: the socket is dropped once, on the first.
    const watchdog = this.#watchdog;
    socket._destroySocket = watchdog;
    socket.on('end', watchdog);
    socket.on('error', watchdog);
    socket.on('close', watchdog);
    // Bytes after the slot line (checked against the bound before the offer).
    if (state === IDLE && socket.readableLength > 0) this.#hold(h, socket);
  }

  // A socket's unread bytes, or 0 if they cannot be read (a throwing getter
  // is met again, and handled, when the socket is adopted).
  #unreadOf(socket) {
    try {
      const n = socket.readableLength;
      return typeof n === 'number' ? n : 0;
    } catch {
      return 0;
    }
  }

  // Takes the unread bytes out of an idle socket (the bytes after the slot
  // line, or a response left unread), so that a FIN gives 'end' at once and
  // the pool drops the socket: a stream says nothing of its end while bytes
  // wait in its buffer. The bytes go back to the front of the stream, with
  // unshift, before the socket is next lent. A socket with a 'data' listener
  // of its own is left alone (reading would feed that listener).
  // Returns false, reading nothing, when the socket's bytes would take what
  // the pool holds for it past maxHeldBytes: a peer that streams to an idle
  // connection must not grow the pool's memory (the caller drops it).
  #hold(h, socket) {
    if (socket.listenerCount('data') !== 0 || typeof socket.read !== 'function') return true;
    const before = this.#held[h];
    const had = before === undefined ? 0 : before.length;
    if (had + socket.readableLength > this.#maxHeldBytes) return false;
    const chunk = socket.read();
    if (chunk === null) return true;
    if (before === undefined) {
      this.#held[h] = chunk;
      this.#heldCount++;
    } else {
      this.#held[h] = typeof chunk === 'string' ? before + chunk : Buffer.concat([before, chunk]);
    }
    this.#heldBytes += chunk.length;
    return true;
  }

  // Puts held bytes back in front of whatever arrived since.
  #giveBack(h, socket) {
    const chunk = this.#held[h];
    this.#held[h] = undefined;
    this.#heldCount--;
    this.#heldBytes -= chunk.length;
    socket.unshift(chunk);
  }

  // An idle (or just returned) socket with more unread bytes than the pool
  // holds: dropped, its slot freed on both sides.
  #dropFlooded(h, socket) {
    this.#counters.droppedFlooded++;
    if (debugOn) {
      debug('slot %d flooded: more than %d bytes unread while idle', socket._slot, this.#maxHeldBytes);
    }
    this.#drop(h, socket, 'flooded', false);
  }

  #displace(victim, slot, wasLeased) {
    const socket = this.#sockets[victim];
    if (wasLeased) {
      // Lent out: destroyed when returned, never lent again; it keeps its
      // listeners (an 'error' meanwhile must not crash the process).
      this.#state[victim] = DISPLACED;
      if (debugOn) debug('displaced leased slot %d: destroy when returned', slot);
    } else {
      this.#discard(victim, socket);
      if (debugOn) debug('displaced idle slot %d: destroyed', slot);
    }
  }

  // Undoes a displacement whose new socket could not be adopted: the victim
  // is offered again on its slot (the pool has room for it now), under the
  // handle Rust gives it, with its state, bytes and lease as they were.
  #restore(victim, slot, wasLeased) {
    const socket = this.#sockets[victim];
    const state = this.#state[victim];
    const held = this.#held[victim];
    const io = this.#io;
    io[N.IO_SLOT] = slot;
    io[N.IO_LEASE] = wasLeased ? 1 : 0;
    if (!this.#callNative(N.offer) || this.#meta[N.META_RESULT] !== N.OFFER_KEPT) {
      this.#displace(victim, slot, wasLeased); // cannot happen; if it does, the usual way
      return;
    }
    const h = io[N.IO_HANDLE];
    this.#sockets[victim] = undefined;
    this.#state[victim] = FREE;
    this.#held[victim] = undefined;
    this.#sockets[h] = socket;
    this.#state[h] = state;
    this.#held[h] = held;
    socket[kHandle] = h;
  }

  #refuse(slot, socket, reason, highestSlot) {
    this.#destroyQuietly(socket);
    this.#counters.offersRefused++;
    if (debugOn) {
      debug(reason === 'full' ? `refused slot %d: pool full, highest kept slot ${highestSlot}` : `refused slot %d: ${reason}`, slot);
    }
    if (channels.refused.hasSubscribers) channels.refused.publish({ client: this, slot, socket, reason, highestSlot });
  }

  // A pooled socket emitted 'end', 'error' or 'close'.
  #onGone(socket, why, arg) {
    const h = socket[kHandle];
    if (h === undefined) return;
    // `socket[kHandle]` is ours only if our table agrees; another pool may
    // hold it after we let it go.
    if (this.#sockets[h] !== socket) return;
    const state = this.#state[h];
    this.#drop(h, socket, why, state === LEASED || state === HANDED || state === DISPLACED,
      why === 'error' ? arg : undefined);
  }

  // Forgets a dead socket and frees its slot (unless displaced). A socket
  // still out with a user is left to them, and its one return accepted.
  #drop(h, socket, why, stillLent, error) {
    const wasDisplaced = this.#state[h] === DISPLACED;
    this.#removeHandle(h);
    if (stillLent) this.#counters.droppedLeased++;
    else this.#counters.droppedIdle++;
    if (channels.dropped.hasSubscribers) {
      channels.dropped.publish({ client: this, slot: socket._slot, socket, reason: why, leased: stillLent, error });
    }
    if (stillLent) {
      this.#forget(h, socket);
      socket._destroyed = true;
      this.#markDiedLent(socket);
    } else {
      this.#discard(h, socket);
    }
    if (debugOn) {
      const event = why === 'end' || why === 'error' || why === 'close';
      debug('dropped slot %d (%s)%s, %d slots held', socket._slot, event ? 'socket ended' : why,
        (event ? ` on '${why}'` : '') + (wasDisplaced ? ', displaced' : ''), this.slotCount);
    }
    if (stillLent) this.#onDrained?.();
  }

  // A kept socket that threw when the pool touched it (a getter or setter
  // that throws, on() that throws): dropped, destroyed if it can be, and
  // reported, since something handed the pool a hostile object.
  #dropUnusable(h, socket, err) {
    this.#removeHandle(h);
    this.#counters.droppedIdle++;
    this.#forget(h, socket);
    this.#destroyQuietly(socket);
    if (channels.dropped.hasSubscribers) {
      channels.dropped.publish({ client: this, slot: undefined, socket, reason: 'unusable', leased: false, error: err });
    }
    this.#report(codedError('ERR_CALLOSUM_NOT_A_SOCKET',
      `a kept socket threw when the pool used it (${describe(err)}); dropped`, { cause: err }));
    this.#onDrained?.();
  }

  #markDiedLent(socket) {
    try {
      socket[kHandle] = this.#diedMark;
    } catch {
      // a hostile object: its return will be NOT_LEASED
    }
  }

  // Forgets a socket the pool is done with and destroys it, unless its user
  // or its peer did already.
  #discard(h, socket) {
    this.#forget(h, socket);
    try {
      socket._leased = false;
      socket._destroyed = true;
    } catch {
      // marks are courtesy; destroying is what matters
    }
    this.#destroyQuietly(socket);
  }

  // socket.destroy(), unless done already; never throws.
  #destroyQuietly(socket) {
    try {
      if (socket.destroyed !== true) socket.destroy();
    } catch {
      // a hostile object: nothing the pool can close
    }
  }

  // The rare native calls that take a handle: `release` (a lent socket
  // given back to be destroyed) and `remove` (a dead one).
  #releaseHandle(h) {
    this.#io[N.IO_HANDLE] = h;
    this.#callNative(N.release);
  }

  #removeHandle(h) {
    this.#io[N.IO_HANDLE] = h;
    this.#callNative(N.remove);
  }

  // Clears a handle's table entry; the handle is free in Rust already.
  #forget(h, socket) {
    this.#sockets[h] = undefined;
    this.#state[h] = FREE;
    const held = this.#held[h];
    if (held !== undefined) {
      this.#held[h] = undefined;
      this.#heldCount--;
      this.#heldBytes -= held.length;
    }
    try {
      socket[kHandle] = undefined;
    } catch {
      // a hostile object; the table no longer points at it
    }
  }

  #nativeStats() {
    if (this.#poisoned) return null;
    try {
      return this.#native.stats();
    } catch (err) {
      this.#nativeFault(err);
      return null;
    }
  }
}

module.exports = { CallosumClient };
