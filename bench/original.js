'use strict';

// A cost-faithful model of the original callosum-client-tcp 0.1.5 pool, for the
// benchmark only. It is written from ../../shared/SPEC.md (C and D items) and
// reproduces the original's algorithm and data structures, defects included:
//
// - two binary heaps (a min heap to lend the lowest slot, a max heap to find the
//   highest slot kept), each a 1-indexed plain Array whose element 0 holds the
//   heap size, of freshly allocated `{key, data}` node objects;
// - insertion puts a node with an infinite key at the end and moves its key
//   down/up with the decrease/increase-key loop; extraction moves the last node
//   to the root and sifts it down with a recursive heapify; the slot vacated at
//   the end is not cleared, and the arrays never shrink;
// - both heaps are cleaned lazily: destroyed sockets stay in them until they
//   surface at the root of an extraction;
// - `deadpool`: displaced sockets still leased, an Array searched with
//   `indexOf` on every return and shrunk with `splice`;
// - sockets are marked with `_slot`, `_leased`, `_destroyed` and the watchdog
//   `_destroySocket`, installed once on `end`, `error` and `close`.
//
// Defects kept on purpose (this models the original, not the fix):
// D1 every return inserts the socket into both heaps, though a lease only took
//    it out of the min heap: one stale max-heap node per get/return cycle.
// D2 the watchdog of a displaced, still leased socket decrements `slotCount`.
// D3 returning a socket twice inserts it twice into the heaps.
// D4 returning a socket the pool never had adopts it (with `_slot` undefined).
// D5 offering the same socket twice counts it twice.
// D6 only `_destroyed` is checked, not `socket.destroyed`.
// D7 a full pool whose max heap holds no live socket leaves the offered socket
//    open and owned by nobody.
// D8 slots are not checked. D9 there is no close().

const { EventEmitter } = require('events');

function parent(index) {
  return Math.floor(index / 2);
}
function left(index) {
  return 2 * index;
}
function right(index) {
  return 2 * index + 1;
}

class ObjectHeap {
  constructor(kind) {
    this.array = [0]; // array[0] is the heap size, nodes at 1..size
    this.kind = kind; // 'min' or 'max'
  }

  static decreaseKey(array, index, value) {
    if (value > array[index].key) {
      throw new Error('new key value is larger than current key');
    }
    array[index].key = value;
    while (index > 1 && array[parent(index)].key > array[index].key) {
      const up = parent(index);
      const tmp = array[up];
      array[up] = array[index];
      array[index] = tmp;
      index = up;
    }
  }

  static increaseKey(array, index, value) {
    if (value < array[index].key) {
      throw new Error('new key value is smaller than current key');
    }
    array[index].key = value;
    while (index > 1 && array[parent(index)].key < array[index].key) {
      const up = parent(index);
      const tmp = array[up];
      array[up] = array[index];
      array[index] = tmp;
      index = up;
    }
  }

  static minHeapify(array, index, size) {
    const l = left(index);
    const r = right(index);
    let smallest = l <= size && array[l].key < array[index].key ? l : index;
    if (r <= size && array[r].key < array[smallest].key) smallest = r;
    if (smallest !== index) {
      const tmp = array[index];
      array[index] = array[smallest];
      array[smallest] = tmp;
      ObjectHeap.minHeapify(array, smallest, size);
    }
  }

  static maxHeapify(array, index, size) {
    const l = left(index);
    const r = right(index);
    let largest = l <= size && array[l].key > array[index].key ? l : index;
    if (r <= size && array[r].key > array[largest].key) largest = r;
    if (largest !== index) {
      const tmp = array[index];
      array[index] = array[largest];
      array[largest] = tmp;
      ObjectHeap.maxHeapify(array, largest, size);
    }
  }

  insert(key, data) {
    const array = this.array;
    array[0]++;
    const node = { key: this.kind === 'max' ? -Infinity : Infinity, data };
    array[array[0]] = node;
    if (this.kind === 'max') ObjectHeap.increaseKey(array, array[0], key);
    else ObjectHeap.decreaseKey(array, array[0], key);
    return this;
  }

  extractMin() {
    if (this.kind === 'max') throw new Error('extractMin() is not defined for a max heap');
    const array = this.array;
    if (array[0] < 1) return undefined;
    const top = array[1];
    array[1] = array[array[0]]; // the vacated end slot keeps its reference
    array[0]--;
    ObjectHeap.minHeapify(array, 1, array[0]);
    return top.data;
  }

  extractMax() {
    if (this.kind === 'min') throw new Error('extractMax() is not defined for a min heap');
    const array = this.array;
    if (array[0] < 1) return undefined;
    const top = array[1];
    array[1] = array[array[0]];
    array[0]--;
    ObjectHeap.maxHeapify(array, 1, array[0]);
    return top.data;
  }

  get size() {
    return this.array[0];
  }
}

class OriginalCallosumClient extends EventEmitter {
  constructor(options) {
    super();
    options = options || {};
    this.deadpool = [];
    this.MAX_SLOTS = options.MAX_SLOTS || 100;
    this.minHeap = new ObjectHeap('min');
    this.maxHeap = new ObjectHeap('max');
    this.slotCount = 0;
  }

  getConnection() {
    let socket = this.minHeap.extractMin();
    while (socket && socket._destroyed) socket = this.minHeap.extractMin(); // lazy cleanup
    if (socket) socket._leased = true;
    return socket;
  }

  insertSocket(slot, socket) {
    socket._slot = slot;
    if (!socket._destroySocket) {
      const self = this;
      const destroySocket = function destroySocket() {
        // once only: the watchdog removes itself
        socket.removeListener('end', socket._destroySocket);
        socket.removeListener('error', socket._destroySocket);
        socket.removeListener('close', socket._destroySocket);
        if (self.slotCount > 0) self.slotCount--; // D2: even when displaced
        socket._destroyed = true;
      };
      socket._destroySocket = destroySocket;
      socket.on('end', destroySocket);
      socket.on('error', destroySocket);
      socket.on('close', destroySocket);
    }
    this.minHeap.insert(slot, socket);
    this.maxHeap.insert(slot, socket);
  }

  newConnection(slot, socket) {
    if (this.slotCount < this.MAX_SLOTS) {
      this.slotCount++; // D5: no check that the socket is already kept
      this.insertSocket(slot, socket);
      return;
    }
    let maxSocket = this.maxHeap.extractMax();
    while (maxSocket && maxSocket._destroyed) maxSocket = this.maxHeap.extractMax(); // lazy cleanup
    if (maxSocket && maxSocket._slot <= slot) {
      socket.destroy(); // refused
      this.maxHeap.insert(maxSocket._slot, maxSocket);
      return;
    }
    if (!maxSocket) return; // D7: the offered socket is neither kept nor closed
    maxSocket._destroyed = true; // displaced
    if (!maxSocket._leased) {
      maxSocket.removeListener('end', maxSocket._destroySocket);
      maxSocket.removeListener('error', maxSocket._destroySocket);
      maxSocket.removeListener('close', maxSocket._destroySocket);
      maxSocket.destroy();
    } else {
      this.deadpool.push(maxSocket); // destroyed when returned
    }
    this.insertSocket(slot, socket);
  }

  returnConnection(socket) {
    const index = this.deadpool.indexOf(socket);
    if (index >= 0) {
      const dead = this.deadpool[index];
      dead.removeListener('end', dead._destroySocket);
      dead.removeListener('error', dead._destroySocket);
      dead.removeListener('close', dead._destroySocket);
      dead.destroy();
      this.deadpool.splice(index, 1);
      return;
    }
    if (socket._destroyed) return; // died while leased: dropped
    socket._leased = false; // D3, D4: no check that it was lent by this pool
    this.insertSocket(socket._slot, socket); // D1: into both heaps
  }
}

module.exports = OriginalCallosumClient;
module.exports.ObjectHeap = ObjectHeap;
