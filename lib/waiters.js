'use strict';

// Waiting and hand-offs: the callers of `acquire()` waiting for a connection,
// in a first-come, first-served queue (a doubly linked list, so a waiter that
// times out or is aborted leaves from anywhere in O(1) and nothing stale stays
// behind), and the hand-off of a returned or new socket to the oldest.
//
// Shared state: see lib/handles.js (collaborator objects owned by the client).

const { errors, abortError } = require('./errors.js');
const { channels } = require('./diagnostics.js');
const { LEASED, HANDED, kHandle } = require('./handles.js');

class Waiter {
  /**
   * @param {(socket: any) => void} resolve
   * @param {(err: Error) => void} reject
   */
  constructor(resolve, reject) {
    this.resolve = resolve;
    this.reject = reject;
    /** @type {NodeJS.Timeout | undefined} */
    this.timer = undefined;
    /** @type {AbortSignal | undefined} */
    this.signal = undefined;
    /** @type {(() => void) | undefined} */
    this.onAbort = undefined;
    /** @type {Waiter | null} */
    this.prev = null;
    /** @type {Waiter | null} */
    this.next = null;
    this.queued = false;
  }
}

class WaitQueue {
  constructor() {
    /** @type {Waiter | null} */
    this.head = null;
    /** @type {Waiter | null} */
    this.tail = null;
    this.length = 0;
  }

  /** @param {Waiter} waiter */
  push(waiter) {
    waiter.prev = this.tail;
    waiter.next = null;
    if (this.tail === null) this.head = waiter;
    else this.tail.next = waiter;
    this.tail = waiter;
    waiter.queued = true;
    this.length++;
  }

  /**
   * Takes `waiter` out of the queue and drops its timer and abort listener.
   * Returns false if it had already left.
   * @param {Waiter} waiter
   */
  remove(waiter) {
    if (!waiter.queued) return false;
    if (waiter.prev === null) this.head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === null) this.tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = null;
    waiter.queued = false;
    this.length--;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    if (waiter.onAbort !== undefined) {
      // The waiter is out of the queue already; a signal that throws here
      // must not stop a hand-off half way.
      try {
        waiter.signal?.removeEventListener('abort', waiter.onAbort);
      } catch {
        // nothing to undo
      }
    }
    return true;
  }

  /** The oldest waiter, out of the queue; null if none. */
  shift() {
    const waiter = this.head;
    if (waiter !== null) this.remove(waiter);
    return waiter;
  }
}

function noop() {}

/** A client's waiters, and its hand-offs to them. */
class Waiting extends WaitQueue {
  /**
   * @param {import('./client.js').CallosumClient} client named in channel messages
   * @param {import('./handles.js').HandleTable} table
   * @param {import('./counters.js').Counters} counters
   */
  constructor(client, table, counters) {
    super();
    this.client = client;
    this.table = table;
    this.counters = counters;
    // Marks a handed socket lent: the first reaction on a waiter's promise
    // (see wait), so it runs before the caller's own code, and a waiter's
    // own return is always accepted.
    /** @param {any} socket */
    this.received = (socket) => {
      this.counters.acquiresAfterWait++;
      const h = socket[kHandle];
      if (h !== undefined && this.table.sockets[h] === socket && this.table.state[h] === HANDED) {
        this.table.state[h] = LEASED;
      }
    };
  }

  /**
   * Hands a socket to the oldest waiter. Until the waiter's code can run the
   * socket is HANDED: a return then is its previous holder's second return
   * (in the same tick, say), refused as NOT_LEASED.
   * @param {number} h
   * @param {any} socket
   */
  handTo(h, socket) {
    const waiter = /** @type {Waiter} */ (this.shift());
    this.table.state[h] = HANDED;
    this.counters.leases++;
    waiter.resolve(socket);
  }

  /**
   * Joins the queue. Apart from acquire() so that its closures don't cost
   * the immediate path a context allocation.
   * @param {number | undefined} timeout
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<any>}
   */
  wait(timeout, signal) {
    const promise = new Promise((resolve, reject) => {
      const waiter = new Waiter(resolve, reject);
      if (signal !== undefined) {
        const onAbort = () => {
          if (this.remove(waiter)) {
            this.counters.acquiresAborted++;
            reject(abortError(signal));
          }
        };
        try {
          signal.addEventListener('abort', onAbort, { once: true });
        } catch (err) {
          reject(errors.ERR_INVALID_ARG_TYPE('acquire: options.signal', null, err, 'refused a listener'));
          return;
        }
        waiter.signal = signal;
        waiter.onAbort = onAbort;
      }
      if (timeout !== undefined && timeout !== Infinity) {
        waiter.timer = setTimeout(() => {
          if (this.remove(waiter)) {
            this.counters.acquiresTimedOut++;
            if (channels.acquireTimeout.hasSubscribers) {
              channels.acquireTimeout.publish({ client: this.client, timeout, waiting: this.length });
            }
            reject(errors.ERR_CALLOSUM_ACQUIRE_TIMEOUT(timeout));
          }
        }, timeout);
      }
      this.push(waiter);
    });
    // Registered before the caller can register anything: see handTo.
    promise.then(this.received, noop);
    return promise;
  }

  /** Rejects every waiter: the pool closed. */
  rejectAll() {
    for (let w = this.shift(); w !== null; w = this.shift()) w.reject(errors.ERR_CALLOSUM_CLOSED(true));
  }
}

module.exports = { Waiter, WaitQueue, Waiting };
