'use strict';

// Timed regions and the heap around them: every measurement starts on a
// settled heap (no implementation pays for another's garbage) and adds its
// CPU time to a share printed at the end (a load indicator on a shared machine).

const { performance } = require('node:perf_hooks');
const v8 = require('node:v8');

const gc = typeof global.gc === 'function' ? global.gc : null;
// A full GC before a measurement when the heap has grown since the last one
// (the original model and generic-pool leave garbage; the others do not), so
// that no implementation pays for another's garbage, without a full GC of a
// large live heap before every measurement.
let heapAfterGc = 0;
let dirty = false; // a large structure was dropped since the last full GC
function collect(force) {
  if (!gc) return;
  const used = v8.getHeapStatistics().used_heap_size;
  if (force || dirty || used > heapAfterGc + 8 * 2 ** 20) {
    dirty = false;
    gc();
    heapAfterGc = v8.getHeapStatistics().used_heap_size;
  }
}

// A large structure was dropped: the next measurement starts with a full GC.
function markDirty() {
  dirty = true;
}

const now = () => performance.now();

// CPU time of the whole process (all threads) during the timed regions, next to
// their wall time: their ratio says how much of a core the bench really had.
const cpuShare = { wallMs: 0, cpuMs: 0 };
let cpuMark = null;
function cpuStart() {
  cpuMark = process.cpuUsage();
}
function cpuStop(wallMs) {
  const d = process.cpuUsage(cpuMark);
  cpuShare.wallMs += wallMs;
  cpuShare.cpuMs += (d.user + d.system) / 1000;
}

// A timed region: a settled heap first, then the run, with the process's CPU
// share recorded. Returns the start and end times (ms).
function timed(run) {
  collect();
  cpuStart();
  const t0 = now();
  run();
  const t1 = now();
  cpuStop(t1 - t0);
  return { t0, t1 };
}

async function timedAsync(run) {
  collect();
  cpuStart();
  const t0 = now();
  await run();
  const t1 = now();
  cpuStop(t1 - t0);
  return { t0, t1 };
}

async function settle() {
  // full GCs with turns of the event loop between them, so that freed array
  // buffers and external memory are accounted before a reading
  for (let i = 0; i < 3; i++) {
    collect(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

module.exports = { gc, collect, markDirty, now, cpuShare, timed, timedAsync, settle };
