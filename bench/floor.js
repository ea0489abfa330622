'use strict';

// The plain-JavaScript floor of a get/return cycle: the least work any correct
// pool does per lease and return, with none of the checks a correct pool needs.
// A binary min-heap of (slot, handle) in two typed arrays, a handle table of
// sockets, the handle stored on the socket. No validation, no displacement, no
// watchdogs, no double-return or foreign-socket detection. `newConnection`
// only fills the pool (it does not compare with the highest slot).

const kHandle = Symbol('floorHandle');

class FloorPool {
  constructor(options) {
    const max = options?.MAX_SLOTS || 100;
    this.MAX_SLOTS = max;
    this.heapSlot = new Float64Array(max);
    this.heapHandle = new Int32Array(max);
    this.slotOf = new Float64Array(max); // handle -> slot
    this.size = 0;
    this.sockets = []; // handle -> socket
  }

  newConnection(slot, socket) {
    const handle = this.sockets.length;
    this.sockets.push(socket);
    this.slotOf[handle] = slot;
    socket[kHandle] = handle;
    this.push(slot, handle);
  }

  get slotCount() {
    return this.sockets.length;
  }

  push(slot, handle) {
    const hs = this.heapSlot;
    const hh = this.heapHandle;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const ps = hs[p];
      if (ps <= slot) break;
      hs[i] = ps;
      hh[i] = hh[p];
      i = p;
    }
    hs[i] = slot;
    hh[i] = handle;
  }

  getConnection() {
    const n = this.size;
    if (n === 0) return undefined;
    const hs = this.heapSlot;
    const hh = this.heapHandle;
    const top = hh[0];
    const last = n - 1;
    this.size = last;
    if (last > 0) {
      const slot = hs[last];
      const handle = hh[last];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= last) break;
        if (c + 1 < last && hs[c + 1] < hs[c]) c++;
        if (hs[c] >= slot) break;
        hs[i] = hs[c];
        hh[i] = hh[c];
        i = c;
      }
      hs[i] = slot;
      hh[i] = handle;
    }
    return this.sockets[top];
  }

  returnConnection(socket) {
    const handle = socket[kHandle];
    this.push(this.slotOf[handle], handle);
  }
}

module.exports = FloorPool;
