'use strict';

// The handle table: by the native pool's handles, each kept socket, its state
// as JavaScript last left it, and the bytes held for it while idle
// (lib/held-bytes.js decides when). Rust never reports a state: `remove` and
// `release` leave no result, and the client knows each socket's state.
//
// Shared state, in every file of lib/ that a client is made of: collaborator
// objects. The client (lib/client.js) owns one of each (this table, the native
// bridge, the socket watch, held bytes, offers, waiting, close) in its own
// `#fields`, and hands each collaborator the others it needs when it makes it.
// Their fields are plain properties, read directly by the other collaborators
// (the hot path reads `table.sockets[h]`), but no user can reach them: the only
// reference to each is a private field of the client. So state stays private
// (no symbol-keyed properties for util.inspect, Reflect.ownKeys or a hostile
// caller to find, as module-level symbols would leave on the client), each
// concept keeps its invariants in one class, and no private method is passed
// out of a class.

// Handle states. FREE: no socket. IDLE: kept, not lent (a queued return counts
// as IDLE). LEASED: lent. DISPLACED: lent, its slot given to a lower one;
// destroyed when returned. HANDED: handed to a waiter of acquire() whose code
// has not run yet: still lent, but a return now is the previous holder's
// second return (lib/waiters.js).
const FREE = 0;
const IDLE = 1;
const LEASED = 2;
const DISPLACED = 3;
const HANDED = 4;

// The handle a socket holds in the pool that keeps it. One module-wide key, so
// a socket's shape stays the same whichever pool it passes through.
// A socket that died while lent out keeps, under kHandle, a negative mark
// naming the pool that owes it one quiet return (a mark in the same property,
// not one more: a new property would change the socket's shape again).
const kHandle = Symbol('callosum.handle');

class HandleTable {
  /** @param {number} poolId the native pool's id (names the died-while-lent mark) */
  constructor(poolId) {
    /** @type {any[]} by handle: the socket, or undefined */
    this.sockets = [];
    /** @type {number[]} by handle: FREE, IDLE, LEASED, DISPLACED or HANDED */
    this.state = [];
    /** @type {Array<Buffer | string | undefined>} by handle: bytes taken out of an idle socket (lib/held-bytes.js) */
    this.held = [];
    /** How many entries of `held` are set, and their bytes in all. */
    this.heldCount = 0;
    this.heldBytes = 0;
    /** @type {number[]} by handle, adaptive pools only: the server index it was offered with (lib/adaptive.js) */
    this.serverOf = [];
    /** @type {number[]} by handle, adaptive pools only: the clock when a timed lease began, or 0 */
    this.lentAt = [];
    /** How many entries of `lentAt` are set (0 in a pool that is not adaptive: returns skip the check). */
    this.timed = 0;
    /** What kHandle holds on a socket of this pool that died while lent. */
    this.diedMark = -1 - poolId;
  }

  /** Whether handle `h` is `socket`'s in this table (a kHandle value alone may be another pool's). */
  owns(h, socket) {
    return h !== undefined && this.sockets[h] === socket;
  }

  /** Clears a handle's entry (the handle is free in Rust already) and the socket's mark; drops its held bytes. */
  forget(h, socket) {
    this.sockets[h] = undefined;
    this.state[h] = FREE;
    if (this.lentAt[h] > 0) {
      this.lentAt[h] = 0;
      this.timed--;
    }
    this.dropHeld(h);
    try {
      socket[kHandle] = undefined;
    } catch {
      // a hostile object; the table no longer points at it
    }
  }

  /**
   * Drops the bytes held for handle `h`, if any.
   * @param {number} h
   */
  dropHeld(h) {
    const held = this.held[h];
    if (held !== undefined) {
      this.held[h] = undefined;
      this.heldCount--;
      this.heldBytes -= held.length;
    }
  }

  /** Moves the entry at `from` to `to` (a socket offered again under another handle). */
  move(from, to) {
    const socket = this.sockets[from];
    const state = this.state[from];
    const held = this.held[from];
    this.sockets[from] = undefined;
    this.state[from] = FREE;
    this.held[from] = undefined;
    this.sockets[to] = socket;
    this.state[to] = state;
    this.held[to] = held;
    if (this.serverOf[from] !== undefined) {
      this.serverOf[to] = this.serverOf[from];
      this.lentAt[to] = this.lentAt[from];
      this.lentAt[from] = 0;
    }
    socket[kHandle] = to;
  }

  /** Marks a socket dropped while lent: its one return is then accepted quietly. */
  markDiedLent(socket) {
    try {
      socket[kHandle] = this.diedMark;
    } catch {
      // a hostile object: its return will be NOT_LEASED
    }
  }

  /** Handles of the sockets still out with users (leased, handed or displaced). */
  outstanding() {
    const out = [];
    const state = this.state;
    for (let h = 0; h < state.length; h++) {
      const s = state[h];
      if (s === LEASED || s === HANDED || s === DISPLACED) out.push(h);
    }
    return out;
  }
}

module.exports = { HandleTable, kHandle, FREE, IDLE, LEASED, DISPLACED, HANDED };
