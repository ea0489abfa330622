'use strict';

// Runs a measurement in a worker thread of its own per implementation: its own
// V8 isolate, so Node's EventEmitter code and the shared fake-socket class see
// that implementation's sockets only, as in a process that runs one pool.
// In the main bench process every implementation's sockets pass through the
// same EventEmitter functions, which then go polymorphic; for churn, where
// three `on()` calls per kept socket are a large part of the work, that
// penalty hides most of the difference between a pool and its floor (see
// README). The worker is kept across rounds (warm, like the in-process
// measurements) and the rounds stay interleaved, so per-round ratios still pair
// measurements taken close together.
//
// Main thread: `isolated(kind, name)` resolves to ns per operation.
// Worker: `kind` 'churn' runs workloads.measureChurn on a script made from the
// same seed (the worker inherits BENCH_* from the environment).

const { Worker, isMainThread, parentPort } = require('node:worker_threads');

if (isMainThread) {
  const { cpuShare } = require('./timing.js');
  const workers = new Map(); // name -> { worker, pending }

  function workerFor(name) {
    let entry = workers.get(name);
    if (!entry) {
      const worker = new Worker(__filename);
      entry = { worker, pending: null };
      worker.on('message', (msg) => {
        const p = entry.pending;
        entry.pending = null;
        if (msg.error) p.reject(new Error(msg.error));
        else p.resolve(msg);
      });
      worker.on('error', (err) => {
        if (entry.pending) entry.pending.reject(err);
        entry.pending = null;
      });
      workers.set(name, entry);
    }
    return entry;
  }

  function isolated(kind, name) {
    const entry = workerFor(name);
    return new Promise((resolve, reject) => {
      entry.pending = { resolve, reject };
      entry.worker.postMessage({ kind, name });
    }).then((msg) => {
      // the timed region's CPU time counts in the process's share
      cpuShare.wallMs += msg.wallMs;
      cpuShare.cpuMs += msg.cpuMs;
      return msg.ns;
    });
  }

  async function stopIsolated() {
    for (const { worker } of workers.values()) await worker.terminate();
    workers.clear();
  }

  module.exports = { isolated, stopIsolated };
} else {
  const { measureChurn } = require('./workloads.js');
  const { churnScript } = require('./inputs.js');
  const { cpuShare } = require('./timing.js');
  const WARMUP_RUNS = 3;
  let script = null;
  parentPort.on('message', ({ kind, name }) => {
    try {
      if (kind !== 'churn') throw new Error(`no isolated ${kind}`);
      if (!script) {
        script = churnScript();
        // a fresh isolate: let the loop and the pool's code tier up first (a
        // pool measured alone takes a few runs to reach its steady speed)
        for (let i = 0; i < WARMUP_RUNS; i++) measureChurn(name, script);
      }
      const wall0 = cpuShare.wallMs;
      const cpu0 = cpuShare.cpuMs;
      const ns = measureChurn(name, script);
      parentPort.postMessage({ ns, wallMs: cpuShare.wallMs - wall0, cpuMs: cpuShare.cpuMs - cpu0 });
    } catch (err) {
      parentPort.postMessage({ error: String(err?.message).split('\n')[0] });
    }
  });
}
