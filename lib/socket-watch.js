'use strict';

// Watching kept sockets die: how a dead socket is recognised (isDead,
// deathOf), the one listener every kept socket carries for 'end', 'error' and
// 'close' (the watchdog), and how a dead or hostile socket is dropped: its
// handle removed in Rust, its table entry forgotten, and destroyed, unless it
// is still out with a user, who keeps it and whose one return is accepted
// (the died-while-lent mark, lib/handles.js).
//
// Shared state: see lib/handles.js (collaborator objects owned by the client).

const { errors } = require('./errors.js');
const { channels, debug, debugOn } = require('./diagnostics.js');
const { DISPLACED, LEASED, HANDED, kHandle } = require('./handles.js');

/**
 * Whether a kept socket can still carry a request. `destroyed` covers a
 * socket destroyed before its 'close' (D6); `writableEnded` one its user
 * end()ed before giving it back. A peer's FIN normally gives 'end' at once,
 * but not while unread bytes sit in the socket's buffer (bytes that came
 * after the slot line, or late ones): then the stream knows the peer ended
 * (`_readableState.ended`) and says nothing until read.
 * @param {any} socket
 */
function isDead(socket) {
  if (socket.destroyed === true || socket.writableEnded === true) return true;
  return socket.readableLength > 0 && socket._readableState?.ended === true;
}

/** Why a socket isDead() is dropped, as 'dropped' messages say it. @param {any} socket */
function deathOf(socket) {
  return socket.destroyed === true ? 'destroyed' : 'peer-ended';
}

/** socket.destroy(), unless done already; never throws. @param {any} socket */
function destroyQuietly(socket) {
  try {
    if (socket.destroyed !== true) socket.destroy();
  } catch {
    // a hostile object: nothing the pool can close
  }
}

class SocketWatch {
  /**
   * @param {import('./client.js').CallosumClient} client named in channel messages
   * @param {import('./handles.js').HandleTable} table
   * @param {import('./native.js').NativeBridge} native
   * @param {import('./counters.js').Counters} counters
   * @param {(err: Error) => void} report the client's reporting ('error' event or warning)
   * @param {() => void} settled called when a socket out with a user is dealt with (close() may be draining)
   */
  constructor(client, table, native, counters, report, settled) {
    this.client = client;
    this.table = table;
    this.native = native;
    this.counters = counters;
    this.report = report;
    this.settled = settled;
    const watch = this;
    // The listener for 'end', 'error' and 'close' of every kept socket: one
    // function per pool, not a closure per socket (EventEmitter calls it with
    // the socket as `this`, and the event's argument tells which it was).
    /** @this {any} @param {unknown} arg */
    this.watchdog = function watchdog(arg) {
      if (typeof this === 'object' && this !== null) {
        watch.onGone(this, arg instanceof Error ? 'error' : typeof arg === 'boolean' ? 'close' : 'end', arg);
      }
    };
  }

  /**
   * A pooled socket emitted 'end', 'error' or 'close'.
   * @param {any} socket
   * @param {string} why
   * @param {unknown} arg
   */
  onGone(socket, why, arg) {
    const h = socket[kHandle];
    // `socket[kHandle]` is ours only if our table agrees; another pool may
    // hold it after we let it go.
    if (h === undefined || this.table.sockets[h] !== socket) return;
    const state = this.table.state[h];
    this.drop(
      h,
      socket,
      why,
      state === LEASED || state === HANDED || state === DISPLACED,
      why === 'error' ? arg : undefined,
    );
  }

  /**
   * Forgets a dead socket and frees its slot (unless displaced). A socket
   * still out with a user is left to them, and its one return accepted.
   * @param {number} h
   * @param {any} socket
   * @param {string} why
   * @param {boolean} stillLent
   * @param {unknown} [error]
   */
  drop(h, socket, why, stillLent, error) {
    const table = this.table;
    const wasDisplaced = table.state[h] === DISPLACED;
    this.native.remove(h);
    // Its held bytes go with its slot, before anyone hears of the drop (a
    // subscriber reading stats() sees heldBytes and slotCount agree).
    table.dropHeld(h);
    if (stillLent) this.counters.droppedLeased++;
    else this.counters.droppedIdle++;
    if (channels.dropped.hasSubscribers) {
      channels.dropped.publish({
        client: this.client,
        slot: socket._slot,
        socket,
        reason: why,
        leased: stillLent,
        error,
      });
    }
    if (stillLent) {
      table.forget(h, socket);
      socket._destroyed = true;
      table.markDiedLent(socket);
    } else {
      this.discard(h, socket);
    }
    if (debugOn) {
      const event = why === 'end' || why === 'error' || why === 'close';
      debug(
        'dropped slot %d (%s)%s, %d slots held',
        socket._slot,
        event ? 'socket ended' : why,
        (event ? ` on '${why}'` : '') + (wasDisplaced ? ', displaced' : ''),
        this.client.slotCount,
      );
    }
    if (stillLent) this.settled();
  }

  /**
   * A kept socket that threw when the pool touched it (a getter or setter
   * that throws, on() that throws): dropped, destroyed if it can be, and
   * reported, since something handed the pool a hostile object.
   * @param {number} h
   * @param {any} socket
   * @param {unknown} err
   */
  dropUnusable(h, socket, err) {
    this.native.remove(h);
    this.counters.droppedIdle++;
    this.table.forget(h, socket);
    destroyQuietly(socket);
    if (channels.dropped.hasSubscribers) {
      channels.dropped.publish({
        client: this.client,
        slot: undefined,
        socket,
        reason: 'unusable',
        leased: false,
        error: err,
      });
    }
    this.report(errors.ERR_CALLOSUM_NOT_A_SOCKET('threw', err));
    this.settled();
  }

  /**
   * Forgets a socket the pool is done with and destroys it, unless its user or its peer did already.
   * @param {number} h
   * @param {any} socket
   */
  discard(h, socket) {
    this.table.forget(h, socket);
    try {
      socket._leased = false;
      socket._destroyed = true;
    } catch {
      // marks are courtesy; destroying is what matters
    }
    destroyQuietly(socket);
  }
}

module.exports = { SocketWatch, isDead, deathOf, destroyQuietly };
