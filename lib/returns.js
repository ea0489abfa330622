'use strict';

// The returns that are not the hot path's: a socket displaced while lent, or
// returned to a closed pool (destroyed); one that died while lent (dropped
// now, or, dropped already, its one quiet return); and everything that was
// not lent by this pool (reported as ERR_CALLOSUM_NOT_LEASED, with a hint
// when it looks like a second return). returnConnection (lib/client.js)
// comes here when its one check fails.
//
// Shared state: see lib/handles.js (collaborator objects owned by the client).

const { errors } = require('./errors.js');
const { debug, debugOn } = require('./diagnostics.js');
const { LEASED, DISPLACED, HANDED, kHandle } = require('./handles.js');
const { deathOf, destroyQuietly } = require('./socket-watch.js');

class Returns {
  /**
   * @param {import('./handles.js').HandleTable} table
   * @param {import('./native.js').NativeBridge} native
   * @param {import('./socket-watch.js').SocketWatch} watch
   * @param {import('./counters.js').Counters} counters
   * @param {import('./close.js').Close} close
   * @param {(err: Error) => void} report
   */
  constructor(table, native, watch, counters, close, report) {
    this.table = table;
    this.native = native;
    this.watch = watch;
    this.counters = counters;
    this.close = close;
    this.report = report;
  }

  /**
   * @param {any} socket
   * @param {number | undefined} h
   */
  uncommon(socket, h) {
    const table = this.table;
    if (table.owns(h, socket)) {
      const hh = /** @type {number} */ (h);
      const state = table.state[hh];
      if (state === DISPLACED || (state === LEASED && this.close.closed)) {
        // Its slot went to a lower one, or the pool closed: destroy it.
        this.counters.returns++;
        this.native.release(hh);
        this.watch.discard(hh, socket);
        if (debugOn)
          debug('destroyed returned slot %d (%s)', socket._slot, state === DISPLACED ? 'displaced' : 'closed');
        this.close.settled();
        return;
      }
      if (state === LEASED) {
        // Dead while lent (destroyed, or its peer gone): drop it now.
        this.counters.returns++;
        this.watch.drop(hh, socket, deathOf(socket), false);
        return;
      }
    } else if (h === table.diedMark) {
      // It died while lent out and was dropped then; this is its one return.
      // After an 'end' it may still be half open: the pool owned it, so close it.
      socket[kHandle] = undefined;
      socket._leased = false;
      this.counters.returns++;
      destroyQuietly(socket);
      return;
    }
    const ours = table.owns(h, socket);
    const why = ours && table.state[/** @type {number} */ (h)] === HANDED ? 'handed' : ours ? 'idle' : undefined;
    this.report(errors.ERR_CALLOSUM_NOT_LEASED(socket, why));
  }

  /**
   * returnConnection got something that threw when read.
   * @param {any} socket
   * @param {number | undefined} h
   * @param {unknown} err
   */
  unreadable(socket, h, err) {
    if (this.table.owns(h, socket)) {
      // One of ours, lent or idle, that now throws: it cannot be trusted.
      this.watch.dropUnusable(/** @type {number} */ (h), socket, err);
      return;
    }
    this.report(errors.ERR_CALLOSUM_NOT_LEASED(socket, undefined));
  }
}

module.exports = { Returns };
