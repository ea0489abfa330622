'use strict';

// The plain-JavaScript floor of newConnection churn: the least work any pool
// must do per offer on a full pool under the original's contract, with none of
// the checks a correct pool adds (argument validation, double offers, foreign
// or twice-returned sockets, socket.destroyed, debug logging, close()).
//
// Required per offer, and done here:
// - the max-heap decision: compare the offered slot with the highest kept one;
//   refuse (destroy the offered socket), or keep it and displace the highest;
// - a kept socket gets the marks the original's users may read (_slot,
//   _leased, _destroyed, _destroySocket) and the watchdog on 'end', 'error'
//   and 'close' (one shared function, as in the native client);
// - the loser is destroyed and marked if idle; if leased, it is destroyed
//   when returned;
// - lend / return / a socket dying keep both heaps right, so that later
//   decisions are the same as the native pool's (the bench's churn mix checks
//   that the counts of kept, displacing and refused offers agree).
//
// Data: handles 0..MAX_SLOTS-1 index typed arrays; two indexed binary heaps of
// (key, handle), one over every kept socket (max-heap: key = -slot) and one
// over the idle ones (min-heap: key = slot), each with handle -> position so a
// kept socket can leave either heap from anywhere. A displacing offer takes the
// victim's handle and its place in both heaps (one sift each).

const kHandle = Symbol('churnFloorHandle');
const DISPLACED = -1; // leased when displaced: destroy when returned
const DIED = -2; // died while leased: dropped, destroy when returned
const IDLE = 1;
const LEASED = 2;

class IndexedHeap {
  constructor(capacity) {
    this.key = new Float64Array(capacity);
    this.handle = new Int32Array(capacity);
    this.pos = new Int32Array(capacity).fill(-1); // handle -> position, -1 if absent
    this.size = 0;
  }

  push(key, h) {
    this.up(this.size++, key, h);
  }

  // Moves (key, h) from position i towards the root; writes it where it stops.
  up(i, key, h) {
    const ks = this.key;
    const hs = this.handle;
    const pos = this.pos;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = ks[p];
      if (pk <= key) break;
      ks[i] = pk;
      const ph = hs[p];
      hs[i] = ph;
      pos[ph] = i;
      i = p;
    }
    ks[i] = key;
    hs[i] = h;
    pos[h] = i;
  }

  // Moves (key, h) from position i towards the leaves, within size n.
  down(i, key, h, n) {
    const ks = this.key;
    const hs = this.handle;
    const pos = this.pos;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && ks[c + 1] < ks[c]) c++;
      const ck = ks[c];
      if (ck >= key) break;
      ks[i] = ck;
      const ch = hs[c];
      hs[i] = ch;
      pos[ch] = i;
      i = c;
    }
    ks[i] = key;
    hs[i] = h;
    pos[h] = i;
  }

  // Takes handle h out, wherever it is.
  remove(h) {
    const i = this.pos[h];
    this.pos[h] = -1;
    const last = --this.size;
    if (i === last) return;
    const key = this.key[last];
    const moved = this.handle[last];
    if (i > 0 && this.key[(i - 1) >> 1] > key) this.up(i, key, moved);
    else this.down(i, key, moved, last);
  }
}

class ChurnFloor {
  constructor(options) {
    const max = options?.MAX_SLOTS || 100;
    this.MAX_SLOTS = max;
    this.count = 0;
    this.sockets = new Array(max).fill(undefined);
    this.state = new Uint8Array(max);
    this.kept = new IndexedHeap(max); // key -slot: the root is the highest slot
    this.idle = new IndexedHeap(max); // key slot: the root is the lowest slot
    this.free = new Int32Array(max);
    for (let i = 0; i < max; i++) this.free[i] = max - 1 - i;
    this.freeTop = max;
    const pool = this;
    // one watchdog for every socket; EventEmitter calls it with the socket as this
    this.watchdog = function watchdog() {
      pool.gone(this);
    };
  }

  get slotCount() {
    return this.count;
  }

  adopt(h, slot, socket) {
    this.sockets[h] = socket;
    this.state[h] = IDLE;
    socket[kHandle] = h;
    socket._slot = slot;
    socket._leased = false;
    socket._destroyed = false;
    const watchdog = this.watchdog;
    socket._destroySocket = watchdog;
    socket.on('end', watchdog);
    socket.on('error', watchdog);
    socket.on('close', watchdog);
  }

  newConnection(slot, socket) {
    if (this.count < this.MAX_SLOTS) {
      const h = this.free[--this.freeTop];
      this.count++;
      this.adopt(h, slot, socket);
      this.kept.push(-slot, h);
      this.idle.push(slot, h);
      return;
    }
    const kept = this.kept;
    if (-kept.key[0] <= slot) {
      socket.destroy(); // refused: no lower than the highest kept
      return;
    }
    const h = kept.handle[0];
    const loser = this.sockets[h];
    const loserIdle = this.state[h] === IDLE;
    this.adopt(h, slot, socket);
    kept.down(0, -slot, h, kept.size); // the root's key went down: one sift
    if (loserIdle) {
      this.idle.up(this.idle.pos[h], slot, h); // its slot went down: one sift
      loser[kHandle] = undefined;
      loser._leased = false;
      loser._destroyed = true;
      loser.destroy();
    } else {
      this.idle.push(slot, h);
      loser[kHandle] = DISPLACED;
    }
  }

  getConnection() {
    const idle = this.idle;
    if (idle.size === 0) return undefined;
    const h = idle.handle[0];
    idle.remove(h);
    this.state[h] = LEASED;
    const socket = this.sockets[h];
    socket._leased = true;
    return socket;
  }

  returnConnection(socket) {
    const h = socket[kHandle];
    if (h >= 0) {
      this.state[h] = IDLE;
      socket._leased = false;
      this.idle.push(socket._slot, h);
      return;
    }
    // displaced or died while leased: the pool is done with it
    socket[kHandle] = undefined;
    socket._leased = false;
    socket._destroyed = true;
    if (socket.destroyed !== true) socket.destroy();
  }

  gone(socket) {
    const h = socket[kHandle];
    if (!(h >= 0) || this.sockets[h] !== socket) return; // not (or no longer) kept
    this.kept.remove(h);
    const leased = this.state[h] === LEASED;
    if (!leased) this.idle.remove(h);
    this.sockets[h] = undefined;
    this.state[h] = 0;
    this.free[this.freeTop++] = h;
    this.count--;
    socket._destroyed = true;
    if (leased) {
      socket[kHandle] = DIED;
    } else {
      socket[kHandle] = undefined;
      if (socket.destroyed !== true) socket.destroy();
    }
  }
}

module.exports = ChurnFloor;
