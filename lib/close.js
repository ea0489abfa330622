'use strict';

// Closing a pool: shutting it down (no more lending or keeping, idle sockets
// destroyed, waiters rejected, rovers stopped) and draining (the promise
// close() returns, resolved once no socket the pool owned is out, or
// rejected at close({ timeout })'s deadline after destroying those still
// out). close() and a poisoned native pool both begin here, once.
//
// Shared state: see lib/handles.js (collaborator objects owned by the client).

const { errors } = require('./errors.js');
const { channels, debug, debugOn } = require('./diagnostics.js');
const { IDLE } = require('./handles.js');
const { destroyQuietly } = require('./socket-watch.js');

class Close {
  /** @type {(() => boolean) | null} while draining: checks whether the drain is done */
  #onDrained = null;

  /**
   * @param {import('./client.js').CallosumClient} client named in channel messages
   * @param {import('./handles.js').HandleTable} table
   * @param {import('./native.js').NativeBridge} native
   * @param {import('./socket-watch.js').SocketWatch} watch
   * @param {import('./held-bytes.js').HeldBytes} held
   * @param {import('./waiters.js').Waiting} waiting
   * @param {Set<{ stop(): unknown }>} rovers
   */
  constructor(client, table, native, watch, held, waiting, rovers) {
    this.client = client;
    this.table = table;
    this.native = native;
    this.watch = watch;
    this.held = held;
    this.waiting = waiting;
    this.rovers = rovers;
    this.closed = false;
    /** @type {Promise<void> | null} the promise close() returns, once begun */
    this.closing = null;
  }

  /**
   * Shuts down and keeps the promise of the drain, once.
   * @param {number | undefined} timeout
   * @returns {Promise<void>}
   */
  begin(timeout) {
    if (this.closing !== null) return this.closing;
    this.#shutDown();
    const closing = this.#drained(timeout);
    this.closing = closing;
    // Nobody has to await it; its rejection is only for those who do.
    closing.catch(() => {});
    return closing;
  }

  /** A socket out with a user was returned or dropped: the drain may be done. */
  settled() {
    this.#onDrained?.();
  }

  // close() minus the waiting.
  #shutDown() {
    this.closed = true;
    this.held.stopSweeping();
    for (const rover of this.rovers) rover.stop();
    this.rovers.clear();
    this.native.close();
    // JavaScript knows every socket's state: destroy the idle ones here
    // (also when the native pool can no longer be asked).
    const { state, sockets } = this.table;
    for (let h = 0; h < state.length; h++) {
      if (state[h] === IDLE) this.watch.discard(h, sockets[h]);
    }
    this.waiting.rejectAll();
    const leased = this.table.outstanding().length;
    if (debugOn) debug('closed; %d leased sockets to destroy when returned', leased);
    if (channels.closed.hasSubscribers) channels.closed.publish({ client: this.client, leased });
  }

  /**
   * Resolves when no socket the pool owned is out; with a timeout, rejects at
   * the deadline after destroying what is still out.
   * @param {number | undefined} timeout
   * @returns {Promise<void>}
   */
  #drained(timeout) {
    return new Promise((resolve, reject) => {
      /** @type {NodeJS.Timeout | undefined} */
      let timer;
      const check = () => {
        if (this.table.outstanding().length !== 0) return false;
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
          const out = this.table.outstanding();
          for (const h of out) {
            const socket = this.table.sockets[h];
            this.table.forget(h, socket);
            this.table.markDiedLent(socket);
            destroyQuietly(socket);
          }
          reject(errors.ERR_CALLOSUM_CLOSE_TIMEOUT(out.length, timeout));
        }, timeout);
      }
    });
  }
}

module.exports = { Close };
