'use strict';

// What a pool has done since it was made, counted by the client where each
// outcome becomes known: it sees every one, including those the native pool
// never does (hand-offs to waiters, offers refused before the crossing,
// acquire()'s queue). Monotonic; an increment is all a decision pays.

class Counters {
  constructor() {
    /** Sockets lent: getConnection, acquire, and hand-offs to waiters. */
    this.leases = 0;
    /** Returns accepted (a socket lent by this pool, given back once). */
    this.returns = 0;
    /** Offered sockets kept (displacing ones included). */
    this.offersKept = 0;
    /** Kept offers that displaced the highest kept slot. */
    this.offersDisplacing = 0;
    /** Offered sockets refused and destroyed: pool full, closed, bad slot, already destroyed. */
    this.offersRefused = 0;
    /** Kept sockets found dead while idle (ended, errored, closed, destroyed, unusable). */
    this.droppedIdle = 0;
    /** The part of droppedIdle dropped for holding more than maxHeldBytes unread (a flooding peer). */
    this.droppedFlooded = 0;
    /** Kept sockets that died while lent out. */
    this.droppedLeased = 0;
    /** acquire() served at once. */
    this.acquiresImmediate = 0;
    /** acquire() served after waiting. */
    this.acquiresAfterWait = 0;
    /** acquire() rejected by its timeout. */
    this.acquiresTimedOut = 0;
    /** acquire() rejected by its signal. */
    this.acquiresAborted = 0;
    /** acquire() rejected at once: maxWaiting callers already waiting. */
    this.acquiresQueueFull = 0;
  }

  snapshot() {
    return { ...this };
  }
}

/** The counters' names, in the order counters() lists them. */
const counterNames = Object.freeze(Object.keys(new Counters()));

module.exports = { Counters, counterNames };
