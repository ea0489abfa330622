'use strict';

// CallosumClient: the connection pool users `require`. Sockets stay here, in a
// table indexed by the native pool's handles; every keep, displace, lend and
// drop decision is taken by the Rust pool (lib/native.js). This class watches
// the sockets, checks arguments, and reports bad input as 'error' events
// instead of throwing, since its methods are called from I/O callbacks.

const { EventEmitter } = require('node:events');
const { debuglog } = require('node:util');
const { codedError, describe, abortError } = require('./errors.js');
const { Waiter, WaitQueue } = require('./waiters.js');
const N = require('./native.js');

let debug = debuglog('callosum', (fn) => {
  debug = fn;
});
// Read once: decision logging costs one branch when NODE_DEBUG is off.
const debugOn = debug.enabled;

const DEFAULT_MAX_SLOTS = 100;
const { FREE, IDLE, LEASED, DISPLACED, control, CONTROL_POOL } = N;

// The handle a socket holds in the pool that keeps it. One module-wide key, so
// a socket's shape stays the same whichever pool it passes through.
const kHandle = Symbol('callosum.handle');
// On a socket that died while lent out: the pool that owes it one quiet return.
const kDiedLent = Symbol('callosum.diedLent');

function checkMaxSlots(value) {
  // Falsy (absent, 0, '', null...) means the default, as in the original.
  if (!value) return DEFAULT_MAX_SLOTS;
  if (typeof value !== 'number') {
    throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE',
      `options.MAX_SLOTS must be a number, received ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw codedError(RangeError, 'ERR_OUT_OF_RANGE',
      `options.MAX_SLOTS must be a positive safe integer, received ${describe(value)}`);
  }
  return value;
}

function checkMaxWaiting(value) {
  if (value === undefined || value === Infinity) return Infinity;
  if (typeof value !== 'number') {
    throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE',
      `options.maxWaiting must be a number, received ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw codedError(RangeError, 'ERR_OUT_OF_RANGE',
      `options.maxWaiting must be a non-negative integer or Infinity, received ${describe(value)}`);
  }
  return value;
}

// A socket, as far as the pool needs one: it can be watched, destroyed and
// marked (a frozen object would make the marks throw after the keep).
function isSocketLike(value) {
  return value !== null && typeof value === 'object' &&
    typeof value.on === 'function' && typeof value.destroy === 'function' &&
    Object.isExtensible(value);
}

// The longest delay setTimeout honours; Node turns longer ones into 1 ms.
const TIMEOUT_MAX = 2 ** 31 - 1;

function isAbortSignal(value) {
  return value !== null && typeof value === 'object' && typeof value.aborted === 'boolean' &&
    typeof value.addEventListener === 'function' && typeof value.removeEventListener === 'function';
}

class CallosumClient extends EventEmitter {
  #native;
  #id; // names this pool to the shared native entry points
  #io;
  #meta;
  // By handle: the socket, and its state as JavaScript last left it (IDLE,
  // LEASED or DISPLACED; a queued return counts as IDLE).
  #sockets = [];
  #state = [];
  #waiters = new WaitQueue();
  #maxWaiting;
  #closed = false;
  #rovers = new Set();
  // The listener for 'end', 'error' and 'close' of every kept socket: one
  // function per pool, not a closure per socket (EventEmitter calls it with
  // the socket as `this`).
  #watchdog = (() => {
    const pool = this;
    return function watchdog() {
      if (typeof this === 'object' && this !== null) pool.#onGone(this);
    };
  })();

  constructor(options) {
    super();
    if (options === undefined || options === null) options = {};
    if (typeof options !== 'object') {
      throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE',
        `options must be an object, received ${describe(options)}`);
    }
    const maxSlots = checkMaxSlots(options.MAX_SLOTS);
    this.#maxWaiting = checkMaxWaiting(options.maxWaiting);
    const native = N.createNative(maxSlots);
    this.#native = native.pool;
    this.#id = native.id;
    this.#io = native.io;
    this.#meta = native.meta;
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
      N.lease();
      const h = meta[N.META_RESULT];
      if (h < 0) return undefined;
      const socket = this.#sockets[h];
      if (socket.destroyed === true) {
        // Destroyed but its 'close' not yet emitted (D6): never lend it.
        this.#drop(h, socket, 'destroyed while idle', false);
        continue;
      }
      this.#state[h] = LEASED;
      socket._leased = true;
      return socket;
    }
  }

  /** Takes back a socket lent by `getConnection` or `acquire`. */
  returnConnection(socket) {
    const h = socket == null ? undefined : socket[kHandle];
    if (h === undefined || this.#sockets[h] !== socket || this.#state[h] !== LEASED ||
        this.#closed || socket.destroyed === true) {
      this.#returnUncommon(socket, h);
      return;
    }
    if (this.#waiters.length !== 0) {
      // Straight to the oldest waiter: it stays lent, nothing goes idle.
      this.#waiters.shift().resolve(socket);
      return;
    }
    socket._leased = false;
    this.#state[h] = IDLE;
    // Queue the return; the next crossing into Rust applies it.
    const meta = this.#meta;
    const n = meta[N.META_QUEUE_LEN];
    meta[N.META_QUEUE + n] = h;
    meta[N.META_QUEUE_LEN] = n + 1;
    if (n + 1 === N.QUEUE_CAP) {
      control[CONTROL_POOL] = this.#id;
      N.flush();
    }
  }

  /**
   * Offers a new connection on `slot` (from a rover). The pool keeps it,
   * possibly displacing its highest slot, or destroys it.
   */
  newConnection(slot, socket) {
    if (!isSocketLike(socket)) {
      this.#report(codedError(TypeError, 'ERR_CALLOSUM_NOT_A_SOCKET',
        `newConnection: socket must be a socket (with on() and destroy()), received ${describe(socket)}`));
      return;
    }
    if (socket[kHandle] !== undefined) {
      // Already in this pool or another one: leave it where it is.
      this.#report(codedError(Error, 'ERR_CALLOSUM_SOCKET_HELD',
        `newConnection: this socket is already held by a pool (slot ${describe(socket._slot)}); not offered again`));
      return;
    }
    if (typeof slot !== 'number' || !Number.isSafeInteger(slot) || slot < 0) {
      socket.destroy();
      this.#report(codedError(TypeError, 'ERR_CALLOSUM_INVALID_SLOT',
        `newConnection: slot must be a non-negative safe integer, received ${describe(slot)}; socket destroyed`));
      return;
    }
    if (socket.destroyed === true) {
      if (debugOn) debug('refused slot %d: socket already destroyed', slot);
      return;
    }
    // With callers waiting, a kept socket goes to the oldest at once.
    const handOff = this.#waiters.length !== 0;
    const io = this.#io;
    io[N.IO_SLOT] = slot;
    io[N.IO_LEASE] = handOff ? 1 : 0;
    control[CONTROL_POOL] = this.#id;
    N.offer();
    const code = this.#meta[N.META_RESULT];
    if (code !== N.OFFER_KEPT) {
      socket.destroy();
      if (debugOn) {
        debug(code === N.OFFER_FULL
          ? `refused slot %d: pool full, highest kept slot ${io[N.IO_VICTIM_SLOT]}`
          : 'refused slot %d: pool closed', slot);
      }
      return;
    }
    const h = io[N.IO_HANDLE];
    const victim = io[N.IO_VICTIM];
    this.#adopt(h, slot, socket, handOff ? LEASED : IDLE);
    if (debugOn) debug('kept slot %d (handle %d), %d slots held', slot, h, this.slotCount);
    if (victim >= 0) this.#displace(victim, io[N.IO_VICTIM_SLOT], io[N.IO_VICTIM_LEASED] === 1);
    if (handOff) {
      socket._leased = true;
      this.#waiters.shift().resolve(socket);
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
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') {
        return Promise.reject(codedError(TypeError, 'ERR_INVALID_ARG_TYPE',
          `acquire: options must be an object, received ${describe(options)}`));
      }
      timeout = options.timeout;
      signal = options.signal;
      if (timeout !== undefined && (typeof timeout !== 'number' ||
          !(timeout >= 0 && (timeout <= TIMEOUT_MAX || timeout === Infinity)))) {
        return Promise.reject(codedError(typeof timeout === 'number' ? RangeError : TypeError,
          typeof timeout === 'number' ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE',
          `acquire: options.timeout must be a number of ms from 0 to ${TIMEOUT_MAX}, or Infinity, received ${describe(timeout)}`));
      }
      if (signal !== undefined && !isAbortSignal(signal)) {
        return Promise.reject(codedError(TypeError, 'ERR_INVALID_ARG_TYPE',
          `acquire: options.signal must be an AbortSignal, received ${describe(signal)}`));
      }
    }
    if (this.#closed) {
      return Promise.reject(codedError(Error, 'ERR_CALLOSUM_CLOSED', 'acquire: the pool is closed'));
    }
    if (signal !== undefined && signal.aborted) return Promise.reject(abortError(signal));
    const socket = this.getConnection();
    if (socket !== undefined) return Promise.resolve(socket);
    if (this.#waiters.length >= this.#maxWaiting) {
      return Promise.reject(codedError(Error, 'ERR_CALLOSUM_QUEUE_FULL',
        `acquire: ${this.#waiters.length} callers already waiting (maxWaiting ${this.#maxWaiting})`));
    }
    return this.#wait(timeout, signal);
  }

  // Joins the queue. Apart from acquire() so that its closures don't cost
  // the immediate path a context allocation.
  #wait(timeout, signal) {
    return new Promise((resolve, reject) => {
      const waiter = new Waiter(resolve, reject);
      if (timeout !== undefined && timeout !== Infinity) {
        waiter.timer = setTimeout(() => {
          if (this.#waiters.remove(waiter)) {
            reject(codedError(Error, 'ERR_CALLOSUM_ACQUIRE_TIMEOUT',
              `acquire: no connection within ${timeout} ms`));
          }
        }, timeout);
      }
      if (signal !== undefined) {
        waiter.signal = signal;
        waiter.onAbort = () => {
          if (this.#waiters.remove(waiter)) reject(abortError(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
    });
  }

  /**
   * Shuts the pool down: idle sockets are destroyed now, leased ones when
   * returned, waiters rejected, rovers stopped; offered sockets are destroyed
   * from now on. Calling it again does nothing.
   */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    for (const rover of this.#rovers) rover.stop();
    this.#rovers.clear();
    for (const h of this.#native.close()) this.#discard(h, this.#sockets[h]);
    const closedError = () => codedError(Error, 'ERR_CALLOSUM_CLOSED', 'acquire: the pool was closed while waiting');
    for (let w = this.#waiters.shift(); w !== null; w = this.#waiters.shift()) w.reject(closedError());
    if (debugOn) debug('closed; %d leased sockets to destroy when returned', this.slotCount);
  }

  /**
   * Connects a rover to this pool: every connection it makes is offered here,
   * its errors are re-emitted here, and `close()` stops it.
   */
  rove(servers, options) {
    const Rover = require('./rover.js');
    const rover = new Rover({ ...options, servers });
    rover.on('connection', (slot, socket) => this.newConnection(slot, socket));
    rover.on('error', (err) => this.#report(err));
    rover.on('unreachable', (id, server) => this.emit('unreachable', id, server));
    if (this.#closed) return rover; // never started: close() stopped the rest
    this.#rovers.add(rover);
    rover.start();
    return rover;
  }

  /** Counts to log or export. */
  stats() {
    const s = this.#native.stats();
    return {
      maxSlots: s.maxSlots,
      slotCount: s.slotCount,
      idle: s.idle,
      leased: s.leased,
      displaced: s.displaced,
      lowestSlot: s.lowest ?? null,
      highestSlot: s.highest ?? null,
      waiting: this.#waiters.length,
      closed: this.#closed,
    };
  }

  // -- internals -----------------------------------------------------------

  // Reports bad input without throwing: an 'error' event if anyone listens,
  // otherwise a process warning (an unheard 'error' event would throw).
  #report(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err);
  }

  #returnUncommon(socket, h) {
    if (h !== undefined && this.#sockets[h] === socket) {
      const state = this.#state[h];
      if (state === DISPLACED || (state === LEASED && this.#closed)) {
        // Its slot went to a lower one, or the pool closed: destroy it.
        this.#callWithHandle(N.release, h);
        this.#discard(h, socket);
        if (debugOn) debug('destroyed returned slot %d (%s)', socket._slot, state === DISPLACED ? 'displaced' : 'closed');
        return;
      }
      if (state === LEASED) {
        // Destroyed while lent, its 'close' not yet emitted: drop it now.
        this.#drop(h, socket, 'returned destroyed', false);
        return;
      }
    } else if (socket != null && typeof socket === 'object' && socket[kDiedLent] === this) {
      // It died while lent out and was dropped then; this is its one return.
      // After an 'end' it may still be half open: the pool owned it, so close it.
      socket[kDiedLent] = undefined;
      socket._leased = false;
      if (socket.destroyed !== true) socket.destroy();
      return;
    }
    this.#report(codedError(Error, 'ERR_CALLOSUM_NOT_LEASED',
      `returnConnection: ${describe(socket)} is not a socket lent by this pool` +
      (h !== undefined && this.#sockets[h] === socket ? ' (it is idle: returned twice?)' : '')));
  }

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

  // A pooled socket emitted 'end', 'error' or 'close'.
  #onGone(socket) {
    const h = socket[kHandle];
    if (h === undefined) return;
    // `socket[kHandle]` is ours only if our table agrees; another pool may
    // hold it after we let it go.
    if (this.#sockets[h] !== socket) return;
    const state = this.#state[h];
    this.#drop(h, socket, 'socket ended', state === LEASED || state === DISPLACED);
  }

  // Forgets a dead socket and frees its slot (unless displaced). A socket
  // still out with a user is left to them, and its one return accepted.
  #drop(h, socket, why, stillLent) {
    this.#callWithHandle(N.remove, h);
    if (stillLent) {
      this.#forget(h, socket);
      socket._destroyed = true;
      socket[kDiedLent] = this;
    } else {
      this.#discard(h, socket);
    }
    if (debugOn) debug('dropped slot %d (%s), %d slots held', socket._slot, why, this.slotCount);
  }

  // Forgets a socket the pool is done with and destroys it, unless its user
  // or its peer did already.
  #discard(h, socket) {
    this.#forget(h, socket);
    socket._leased = false;
    socket._destroyed = true;
    if (socket.destroyed !== true) socket.destroy();
  }

  // A rare native call that takes a handle (release, remove).
  #callWithHandle(entry, h) {
    this.#io[N.IO_HANDLE] = h;
    control[CONTROL_POOL] = this.#id;
    entry();
  }

  // Clears a handle's table entry; the handle is free in Rust already.
  #forget(h, socket) {
    this.#sockets[h] = undefined;
    this.#state[h] = FREE;
    socket[kHandle] = undefined;
  }
}

module.exports = { CallosumClient };
