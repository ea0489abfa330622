'use strict';

// A lease: one socket lent once, given back once. `client.lease()` is
// acquire() that returns one of these instead of the bare socket, for code
// that wants a second give-back to be impossible to confuse with someone
// else's: the lease, not the socket, knows whether it was given back, so a
// second `release()` is refused even after the socket went to another user.
// Opt-in; it costs one object per lease. `using lease = await client.lease()`
// releases it at the end of the block.

const { errors } = require('./errors.js');

/** @type {typeof Symbol.dispose} */
const dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');

class Lease {
  #client;
  #socket;
  #report; // the client's own reporting ('error' event or warning)

  /**
   * @param {{ returnConnection(socket: any): void }} client
   * @param {any} socket
   * @param {(err: Error) => void} report
   */
  constructor(client, socket, report) {
    this.#client = client;
    this.#socket = socket;
    this.#report = report;
  }

  /** The socket lent; undefined once released. */
  get socket() {
    return this.#socket;
  }

  get released() {
    return this.#socket === undefined;
  }

  /** Gives the socket back to the pool, once. A second call is reported as ERR_CALLOSUM_NOT_LEASED. */
  release() {
    const socket = this.#socket;
    if (socket === undefined) {
      this.#report(errors.ERR_CALLOSUM_NOT_LEASED(undefined, 'released'));
      return;
    }
    this.#socket = undefined;
    this.#client.returnConnection(socket);
  }

  [dispose]() {
    if (this.#socket !== undefined) this.release();
  }
}

module.exports = { Lease };
