'use strict';

// Looks at every live pool's idle sockets a few times a second, for the one
// fault no event reports: bytes that arrive on an idle socket after the pool
// took it, then a FIN. A stream emits no 'end' while unread bytes sit in its
// buffer, so without a look the socket would keep its slot (and, after the
// server's half-close, the server's slot too) until the pool tried to lend it.
// Each look takes such bytes out of the buffer to be given back at the next
// lease (lib/client.js #hold), after which the FIN gives 'end' as usual.
//
// One timer for the whole process, unref()ed (it never keeps it alive), held
// only while a pool is open; pools are held by WeakRef, so one dropped
// without close() can still be collected.

const SWEEP_MS = 250;

const pools = new Set(); // WeakRef<{ sweep() }>
let timer = null;

function sweep() {
  for (const ref of pools) {
    const pool = ref.deref();
    if (pool === undefined) pools.delete(ref);
    else pool.sweep();
  }
  if (pools.size === 0) stop();
}

function stop() {
  if (timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}

/** Sweeps `target.sweep()` every SWEEP_MS while it lives; returns the handle for unwatch(). */
function watch(target) {
  const ref = new WeakRef(target);
  pools.add(ref);
  if (timer === null) {
    timer = setInterval(sweep, SWEEP_MS);
    timer.unref();
  }
  return ref;
}

function unwatch(ref) {
  pools.delete(ref);
  if (pools.size === 0) stop();
}

module.exports = { watch, unwatch, SWEEP_MS };
