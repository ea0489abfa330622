'use strict';

// Bytes held for idle sockets. A stream says nothing of its end while bytes
// wait in its buffer, so the pool takes the unread bytes out of an idle
// socket (the bytes after the slot line, a response left unread, late bytes)
// and gives them back, in front, before the socket is next lent; then a FIN
// gives 'end' at once and the socket is dropped. A pool holds at most
// maxHeldBytes for one socket: a peer that streams to an idle connection must
// not grow the pool's memory, so such a socket is dropped as 'flooded'.
//
// The sweep: a few times a second every live pool's idle sockets with bytes
// in their buffer are looked at, for the one fault no event reports (bytes
// that arrive on an idle socket, then a FIN). One timer for the whole
// process, unref()ed (it never keeps it alive), held only while a pool is
// open; pools are held by WeakRef, so one dropped without close() can still
// be collected.
//
// Shared state: see lib/handles.js (collaborator objects owned by the client);
// the bytes themselves are in the handle table (`held`, `heldCount`,
// `heldBytes`), so that forgetting a handle drops them.

const { debug, debugOn } = require('./diagnostics.js');
const { IDLE } = require('./handles.js');
const { isDead, deathOf } = require('./socket-watch.js');

const SWEEP_MS = 250;

/** @type {Set<WeakRef<HeldBytes>>} */
const swept = new Set();
/** @type {NodeJS.Timeout | null} */
let timer = null;

function sweepAll() {
  for (const ref of swept) {
    const held = ref.deref();
    if (held === undefined) swept.delete(ref);
    else held.sweep();
  }
  if (swept.size === 0) stopTimer();
}

function stopTimer() {
  if (timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}

class HeldBytes {
  /** @type {WeakRef<HeldBytes> | null} this pool's place in the sweep */
  #ref = null;

  /**
   * @param {import('./handles.js').HandleTable} table
   * @param {import('./socket-watch.js').SocketWatch} watch
   * @param {import('./counters.js').Counters} counters
   * @param {number} max maxHeldBytes
   */
  constructor(table, watch, counters, max) {
    this.table = table;
    this.watch = watch;
    this.counters = counters;
    this.max = max;
  }

  /** Joins the sweep (a pool that opens). */
  startSweeping() {
    this.#ref = new WeakRef(this);
    swept.add(this.#ref);
    if (timer === null) {
      timer = setInterval(sweepAll, SWEEP_MS);
      timer.unref();
    }
  }

  /** Leaves the sweep (a pool that closes). */
  stopSweeping() {
    if (this.#ref !== null) swept.delete(this.#ref);
    this.#ref = null;
    if (swept.size === 0) stopTimer();
  }

  /**
   * Takes the unread bytes out of an idle socket. A socket with a 'data'
   * listener of its own is left alone (reading would feed that listener).
   * Returns false, reading nothing, when the socket's bytes would take what
   * the pool holds for it past maxHeldBytes (the caller drops it).
   * @param {number} h
   * @param {any} socket
   */
  hold(h, socket) {
    if (socket.listenerCount('data') !== 0 || typeof socket.read !== 'function') return true;
    const table = this.table;
    const before = table.held[h];
    const had = before === undefined ? 0 : before.length;
    if (had + socket.readableLength > this.max) return false;
    const chunk = socket.read();
    if (chunk === null) return true;
    if (before === undefined) {
      table.held[h] = chunk;
      table.heldCount++;
    } else {
      table.held[h] =
        typeof chunk === 'string' ? before + chunk : Buffer.concat([/** @type {Buffer} */ (before), chunk]);
    }
    table.heldBytes += chunk.length;
    return true;
  }

  /**
   * Puts held bytes back in front of whatever arrived since.
   * @param {number} h
   * @param {any} socket
   */
  giveBack(h, socket) {
    const table = this.table;
    const chunk = /** @type {Buffer | string} */ (table.held[h]);
    table.held[h] = undefined;
    table.heldCount--;
    table.heldBytes -= chunk.length;
    socket.unshift(chunk);
  }

  /**
   * An idle (or just returned) socket with more unread bytes than the pool
   * holds: dropped, its slot freed on both sides.
   * @param {number} h
   * @param {any} socket
   */
  dropFlooded(h, socket) {
    this.counters.droppedFlooded++;
    if (debugOn) debug('slot %d flooded: more than %d bytes unread while idle', socket._slot, this.max);
    this.watch.drop(h, socket, 'flooded', false);
  }

  /**
   * Each idle socket with unread bytes: the bytes are held, so a FIN behind
   * them gives 'end' and the socket is dropped; one found dead is dropped
   * now. Only sockets with bytes in their buffer are touched.
   */
  sweep() {
    const { state, sockets } = this.table;
    for (let h = 0; h < state.length; h++) {
      if (state[h] !== IDLE) continue;
      const socket = sockets[h];
      try {
        if (socket.readableLength > 0) {
          if (isDead(socket)) this.watch.drop(h, socket, deathOf(socket), false);
          else if (!this.hold(h, socket)) this.dropFlooded(h, socket);
        }
      } catch (err) {
        this.watch.dropUnusable(h, socket, err);
      }
    }
  }
}

module.exports = { HeldBytes, SWEEP_MS };
