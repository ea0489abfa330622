'use strict';

// The stand-in for a net.Socket used by every implementation in the bench and
// by the model's tests: an EventEmitter (so `on`, `once`, `removeListener` and
// `emit` are Node's own) with `destroy()`. No I/O happens, so `destroy()` only
// marks it, as `net.Socket#destroy()` does synchronously (its `close` event
// would come later, on another tick; the bench never waits for one).

const { EventEmitter } = require('events');

class FakeSocket extends EventEmitter {
  constructor(id) {
    super();
    this.id = id;
    this.destroyed = false;
    this.destroyCalls = 0;
  }

  destroy() {
    this.destroyCalls++;
    this.destroyed = true;
    return this;
  }
}

function makeSockets(n, firstId = 0) {
  const sockets = new Array(n);
  for (let i = 0; i < n; i++) sockets[i] = new FakeSocket(firstId + i);
  return sockets;
}

module.exports = { FakeSocket, makeSockets };
