'use strict';

// The callers of `acquire()` waiting for a connection: a first-come,
// first-served queue as a doubly linked list, so a waiter that times out or is
// aborted leaves from anywhere in O(1) and nothing stale stays behind.

class Waiter {
  constructor(resolve, reject) {
    this.resolve = resolve;
    this.reject = reject;
    this.timer = undefined;
    this.signal = undefined;
    this.onAbort = undefined;
    this.prev = null;
    this.next = null;
    this.queued = false;
  }
}

class WaitQueue {
  constructor() {
    this.head = null;
    this.tail = null;
    this.length = 0;
  }

  push(waiter) {
    waiter.prev = this.tail;
    waiter.next = null;
    if (this.tail === null) this.head = waiter;
    else this.tail.next = waiter;
    this.tail = waiter;
    waiter.queued = true;
    this.length++;
  }

  // Takes `waiter` out of the queue and drops its timer and abort listener.
  // Returns false if it had already left.
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
        waiter.signal.removeEventListener('abort', waiter.onAbort);
      } catch {
        // nothing to undo
      }
    }
    return true;
  }

  // The oldest waiter, out of the queue; null if none.
  shift() {
    const waiter = this.head;
    if (waiter !== null) this.remove(waiter);
    return waiter;
  }
}

module.exports = { Waiter, WaitQueue };
