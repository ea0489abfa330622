'use strict';

// Offers and displacement: what newConnection (lib/client.js) does with a
// socket once Rust has decided. A kept socket is adopted (marked, watched,
// its bytes after the slot line held); the socket it displaced is destroyed,
// or, if lent out, marked DISPLACED and destroyed when returned; a refused
// one is destroyed and published. If the new socket cannot be adopted (a
// setter or on() that throws) the displacement is undone.
//
// Shared state: see lib/handles.js (collaborator objects owned by the client).

const { channels, debug, debugOn } = require('./diagnostics.js');
const { errors } = require('./errors.js');
const V = require('./validators.js');
const { IDLE, DISPLACED, kHandle } = require('./handles.js');
const N = require('./native.js');
const { destroyQuietly } = require('./socket-watch.js');

class Offers {
  /**
   * @param {import('./client.js').CallosumClient} client named in channel messages
   * @param {import('./handles.js').HandleTable} table
   * @param {import('./native.js').NativeBridge} native
   * @param {import('./held-bytes.js').HeldBytes} held
   * @param {import('./socket-watch.js').SocketWatch} watch
   * @param {import('./counters.js').Counters} counters
   * @param {(err: Error) => void} report the client's: bad input as 'error' events
   */
  constructor(client, table, native, held, watch, counters, report) {
    this.client = client;
    this.report = report;
    this.table = table;
    this.native = native;
    this.held = held;
    this.watch = watch;
    this.counters = counters;
  }

  /**
   * What an offer must pass before any crossing: a usable socket, held by no
   * pool, a valid slot, alive, the pool open, and no more unread bytes than
   * the pool would hold for it. False if it was refused (destroyed and
   * published) or reported (left alone).
   * @param {number} slot
   * @param {any} socket
   * @param {boolean} closed
   */
  admit(slot, socket, closed) {
    if (!V.isSocketLike(socket)) {
      this.report(errors.ERR_CALLOSUM_NOT_A_SOCKET('offered', socket));
      return false;
    }
    let held;
    try {
      held = socket[kHandle] !== undefined;
    } catch {
      held = true; // a getter on our own key: not a socket we can trust
    }
    if (held) {
      // Already in this pool or another one: leave it where it is.
      this.report(errors.ERR_CALLOSUM_SOCKET_HELD(socket));
      return false;
    }
    if (!V.isSlot(slot)) {
      destroyQuietly(socket);
      this.counters.offersRefused++;
      if (channels.refused.hasSubscribers) {
        channels.refused.publish({ client: this.client, slot, socket, reason: 'invalid-slot', highestSlot: null });
      }
      this.report(errors.ERR_CALLOSUM_INVALID_SLOT(slot));
      return false;
    }
    let dead;
    try {
      dead = socket.destroyed === true;
    } catch {
      dead = true;
    }
    if (dead || closed) {
      this.refuse(slot, socket, dead ? 'destroyed' : 'closed', null);
      return false;
    }
    // More unread bytes than the pool would hold for it (bytes that came
    // with or after the slot line): refused before it can displace anyone.
    if (unreadOf(socket) > this.held.max) {
      this.refuse(slot, socket, 'flooded', null);
      return false;
    }
    return true;
  }

  /**
   * Makes `socket` the pool's under handle `h`: marks, the watchdog, and the bytes after the slot line held.
   * @param {number} h
   * @param {number} slot
   * @param {any} socket
   * @param {number} state IDLE, or HANDED for a socket going to a waiter at once
   */
  adopt(h, slot, socket, state) {
    this.table.sockets[h] = socket;
    this.table.state[h] = state;
    socket[kHandle] = h;
    socket._slot = slot;
    socket._leased = false;
    socket._destroyed = false;
    // One listener for all three: the socket is dropped once, on the first.
    const watchdog = this.watch.watchdog;
    socket._destroySocket = watchdog;
    socket.on('end', watchdog);
    socket.on('error', watchdog);
    socket.on('close', watchdog);
    // Bytes after the slot line (checked against the bound before the offer).
    if (state === IDLE && socket.readableLength > 0) this.held.hold(h, socket);
  }

  /**
   * The socket under `victim` lost its slot to a lower one.
   * @param {number} victim
   * @param {number} slot
   * @param {boolean} wasLeased
   */
  displace(victim, slot, wasLeased) {
    const socket = this.table.sockets[victim];
    if (wasLeased) {
      // Lent out: destroyed when returned, never lent again; it keeps its
      // listeners (an 'error' meanwhile must not crash the process).
      this.table.state[victim] = DISPLACED;
      if (debugOn) debug('displaced leased slot %d: destroy when returned', slot);
    } else {
      this.watch.discard(victim, socket);
      if (debugOn) debug('displaced idle slot %d: destroyed', slot);
    }
  }

  /**
   * Undoes a displacement whose new socket could not be adopted: the victim
   * is offered again on its slot (the pool has room for it now), under the
   * handle Rust gives it, with its state, bytes and lease as they were.
   * @param {number} victim
   * @param {number} slot
   * @param {boolean} wasLeased
   */
  restore(victim, slot, wasLeased) {
    const io = this.native.io;
    io[N.IO_SLOT] = slot;
    io[N.IO_LEASE] = wasLeased ? 1 : 0;
    // An adaptive pool: back on its own server (read only by such a pool).
    io[N.IO_SERVER] = this.table.serverOf[victim] ?? 0;
    if (!this.native.call(N.offer) || this.native.meta[N.META_RESULT] !== N.OFFER_KEPT) {
      this.displace(victim, slot, wasLeased); // cannot happen; if it does, the usual way
      return;
    }
    this.table.move(victim, io[N.IO_HANDLE]);
  }

  /**
   * Destroys an offered socket the pool does not keep, and says why.
   * @param {unknown} slot
   * @param {any} socket
   * @param {string} reason 'full', 'closed', 'destroyed', 'flooded' or 'invalid-slot'
   * @param {number | null} highestSlot
   */
  refuse(slot, socket, reason, highestSlot) {
    destroyQuietly(socket);
    this.counters.offersRefused++;
    if (debugOn) {
      debug(
        reason === 'full'
          ? `refused slot %d: pool full, highest kept slot ${highestSlot}`
          : `refused slot %d: ${reason}`,
        slot,
      );
    }
    if (channels.refused.hasSubscribers) {
      channels.refused.publish({ client: this.client, slot, socket, reason, highestSlot });
    }
  }
}

/**
 * A socket's unread bytes, or 0 if they cannot be read (a throwing getter is met again, and handled, when the
 * socket is adopted).
 * @param {any} socket
 */
function unreadOf(socket) {
  try {
    const n = socket.readableLength;
    return typeof n === 'number' ? n : 0;
  } catch {
    return 0;
  }
}

module.exports = { Offers, unreadOf };
