'use strict';

// The floor of a waiting pool: an array of idle sockets and a queue of
// resolvers, nothing else. No slots, no checks, no time-outs, no abort, no
// bound on the queue. `acquire()` resolves at once with an idle socket, or
// waits; `returnConnection()` hands the socket to the oldest waiter, or makes
// it idle. The queue is an array with a moving head, compacted when half used.

class WaitingFloor {
  constructor() {
    this.idle = [];
    this.waiters = [];
    this.head = 0;
  }

  newConnection(_slot, socket) {
    this.returnConnection(socket);
  }

  acquire() {
    if (this.idle.length > 0) return Promise.resolve(this.idle.pop());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  returnConnection(socket) {
    if (this.head < this.waiters.length) {
      const resolve = this.waiters[this.head];
      this.waiters[this.head++] = undefined;
      if (this.head > 1024 && this.head * 2 > this.waiters.length) {
        this.waiters = this.waiters.slice(this.head);
        this.head = 0;
      }
      resolve(socket);
      return;
    }
    this.idle.push(socket);
  }
}

module.exports = WaitingFloor;
