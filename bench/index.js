'use strict';

// npm run bench  (node --expose-gc bench/index.js)
//
// One process; every implementation measured on the same workloads with the
// same fake sockets (__test__/fixtures/fake-socket.js: an EventEmitter with
// destroy(), no I/O), interleaved round by round (the order rotates every round), one
// discarded warm-up round, then the median of ROUNDS rounds; target ratios are
// medians of per-round ratios. Pools and sockets are built outside the timed
// regions (get+return pools once, reused in every round, except the original's,
// rebuilt every round since D1 makes it grow; churn pools fresh every round),
// and a full GC runs before a measurement whenever garbage is pending.
// Workloads: get+return (same socket) and get+return in bursts of 16 on pools
// of 100, 10,000 and 100,000, and at 100 also on a pool with adaptive: true
// (issue 20), measured next to the plain one in every round; newConnection churn on a full pool of 1,000;
// acquire+return on an idle pool; acquire contended (8 callers per
// connection, each holding it for one setImmediate); memory after 10M cycles.
// See bench/README.md.
//
// Implementations:
//   native         require('..'), this package (skipped as n/a while absent)
//   native-adaptive  the same with { adaptive: true } (n/a on a package
//                  without it); its rows "..., adaptive on" in the native column
//   original       __test__/fixtures/original-0.1.5-model.js, a cost-faithful
//                  model of 0.1.5
//   floor          bench/floor.js, plain-JS typed-array heap, no checks
//   churn-floor    bench/churn-floor.js, plain-JS floor of newConnection churn
//                  (printed in the floor column of the churn row)
//   generic-pool   generic-pool 3.9.0 acquire/release (async)
//   waiting-floor  bench/waiting-floor.js, minimal JS waiting pool (acquire rows)
//
// Environment: BENCH_ROUNDS (default 7), BENCH_SCALE (multiplies every
// iteration count; 0.05 for a smoke run), BENCH_ONLY (comma-separated workload
// ids: getreturn,burst,churn,acquire,contended,memory), BENCH_OUT (output
// folder), BENCH_IMPLS (comma-separated implementations, e.g. native for a
// profile: node --expose-gc --cpu-prof bench/index.js), BENCH_DEBUG=1
// (setup/GC/run times of each get+return measurement).
// docs/bench-get-return.svg is only rewritten by a full-scale run of everything.
//
// This file is the driver (the rounds and their order); the other files each
// do one job: config.js (environment and sizes), implementations.js (the pools
// compared), inputs.js (seeded fill orders and churn script), loops.js (the
// timed loops), timing.js (timed regions, GC, CPU share), workloads.js (one
// measure function per workload), results.js (rounds and paired ratios),
// report.js (table, targets, results.json, chart), isolated.js (churn in a
// worker per implementation).

const { ROUNDS, SCALE, CONFIG, wants } = require('./config.js');
const { native, IMPLS } = require('./implementations.js');
const { churnScript } = require('./inputs.js');
const { gc, settle } = require('./timing.js');
const {
  getReturnPools,
  genericPools,
  measureGetReturn,
  measureBurst,
  measureGenericGetReturn,
  measureChurn,
  churnMix,
  measureAcquire,
  measureContended,
  measureMemory,
} = require('./workloads.js');
const { isolated, stopIsolated } = require('./isolated.js');
const { results, record } = require('./results.js');
const {
  machine,
  printTable,
  printChurnMix,
  computeTargets,
  printTargets,
  printLoad,
  writeOutputs,
} = require('./report.js');

function rotate(list, by) {
  const k = by % list.length;
  return list.slice(k).concat(list.slice(0, k));
}

// The implementations of a get+return or burst row in this round's order: at
// the sizes measured adaptive too, 'native' becomes the pair native and
// native-adaptive, adjacent, the first of the two alternating round by round.
function withAdaptive(order, size, round) {
  if (!CONFIG.adaptive.sizes.includes(size)) return order;
  const pair = round % 2 ? ['native-adaptive', 'native'] : ['native', 'native-adaptive'];
  return order.flatMap((name) => (name === 'native' ? pair : [name]));
}

// A row's id, title and column for one implementation: native-adaptive has
// rows of its own ("..., adaptive on"), in the native column.
function rowOf(id, title, name) {
  if (name !== 'native-adaptive') return { id, title, column: name };
  return { id: `${id}-adaptive`, title: `${title}, adaptive on`, column: 'native' };
}

async function attempt(id, title, unit, name, keep, fn) {
  const entry = results[id]?.impls[name];
  if (entry?.error) return; // failed before: do not retry every round
  try {
    const value = await fn();
    if (keep) record(id, title, unit, name, value);
  } catch (err) {
    record(id, title, unit, name, undefined, String(err?.message).split('\n')[0]);
  }
}

function skip(id, title, unit, name, reason) {
  record(id, title, unit, name, undefined, reason || 'n/a');
}

const phaseSeconds = {};
function phase(name, t0) {
  phaseSeconds[name] = (phaseSeconds[name] || 0) + (Date.now() - t0) / 1000;
}

async function runRound(round, keep, script) {
  const sizes = CONFIG.getReturn.sizes;
  let t0 = Date.now();
  if (wants('getreturn')) {
    for (const size of sizes) {
      const id = `getreturn-${size}`;
      const title = `get+return, pool ${size.toLocaleString('en-US')}`;
      for (const name of withAdaptive(rotate(['native', 'original', 'floor', 'generic-pool'], round), size, round)) {
        const row = rowOf(id, title, name);
        if (!IMPLS[name].available) {
          skip(row.id, row.title, 'ns/cycle', row.column, IMPLS[name].reason);
          continue;
        }
        if (name === 'generic-pool') {
          await attempt(id, title, 'ns/cycle', name, keep, () =>
            measureGenericGetReturn(size, CONFIG.getReturn.asyncCycles),
          );
        } else {
          await attempt(row.id, row.title, 'ns/cycle', row.column, keep, () =>
            measureGetReturn(name, size, CONFIG.getReturn.syncCycles),
          );
        }
      }
    }
  }
  phase('getreturn', t0);
  t0 = Date.now();
  if (wants('burst')) {
    for (const size of sizes) {
      const id = `burst-${size}`;
      const title = `get+return in bursts of ${CONFIG.burst.burst}, pool ${size.toLocaleString('en-US')}`;
      for (const name of withAdaptive(rotate(['native', 'original', 'floor'], round), size, round)) {
        const row = rowOf(id, title, name);
        if (!IMPLS[name].available) skip(row.id, row.title, 'ns/cycle', row.column, IMPLS[name].reason);
        else
          await attempt(row.id, row.title, 'ns/cycle', row.column, keep, () =>
            measureBurst(name, size, CONFIG.burst.cycles),
          );
      }
    }
  }
  phase('burst', t0);
  t0 = Date.now();
  if (wants('churn')) {
    const id = 'churn';
    const title = `newConnection churn, pool ${CONFIG.churn.maxSlots.toLocaleString('en-US')}`;
    for (const name of rotate(['native', 'original', 'churn-floor'], round)) {
      if (!IMPLS[name].available) {
        skip(id, title, 'ns/step', name, IMPLS[name].reason);
        continue;
      }
      await attempt(id, title, 'ns/step', name, keep, () => measureChurn(name, script));
    }
    skip(id, title, 'ns/step', 'generic-pool', 'no slots');
    // the same, each implementation in a worker of its own (bench/isolated.js)
    const idIsolated = 'churn-isolated';
    const titleIsolated = `  same, each in its own worker thread`;
    for (const name of rotate(['native', 'original', 'churn-floor'], round)) {
      if (!IMPLS[name].available) {
        skip(idIsolated, titleIsolated, 'ns/step', name, IMPLS[name].reason);
        continue;
      }
      await attempt(idIsolated, titleIsolated, 'ns/step', name, keep, () => isolated('churn', name));
    }
  }
  phase('churn', t0);
  t0 = Date.now();
  if (wants('acquire')) {
    const id = 'acquire-idle';
    const title = `acquire+return, idle pool ${CONFIG.acquire.poolSize}`;
    for (const name of rotate(['native', 'generic-pool', 'waiting-floor'], round)) {
      if (!IMPLS[name].available) skip(id, title, 'ns/cycle', name, IMPLS[name].reason);
      else if (name === 'native' && !native.hasAcquire) skip(id, title, 'ns/cycle', name, 'no acquire()');
      else
        await attempt(id, title, 'ns/cycle', name, keep, () =>
          measureAcquire(name, CONFIG.acquire.poolSize, CONFIG.acquire.cycles),
        );
    }
  }
  phase('acquire', t0);
  t0 = Date.now();
  if (wants('contended')) {
    const { connections, callers, acquisitions } = CONFIG.contended;
    const id = 'acquire-contended';
    const title = `acquire contended, ${connections} conns / ${callers} callers`;
    for (const name of rotate(['native', 'generic-pool', 'waiting-floor'], round)) {
      if (!IMPLS[name].available) skip(id, title, 'ns/acquire', name, IMPLS[name].reason);
      else if (name === 'native' && !native.hasAcquire) skip(id, title, 'ns/acquire', name, 'no acquire()');
      else
        await attempt(id, title, 'ns/acquire', name, keep, () =>
          measureContended(name, connections, callers, acquisitions),
        );
    }
  }
  phase('contended', t0);
}

async function main() {
  const started = Date.now();
  const info = machine();
  console.log(`callosum-client-tcp bench: ${info.cpu}, ${info.cores} cores, Node ${info.node}, ${info.platform}`);
  console.log(
    `native: ${IMPLS.native.available ? `loaded${native.hasAcquire ? ' (with acquire)' : ' (no acquire)'}` : `n/a (${IMPLS.native.reason})`}`,
  );
  if (!gc)
    console.log('warning: run with --expose-gc (npm run bench) for the memory figures and GC between measurements');
  const gr = CONFIG.getReturn;
  console.log(
    `rounds: ${ROUNDS} (+1 warm-up), scale ${SCALE}; get+return ${gr.syncCycles.toLocaleString('en-US')} cycles (generic-pool ${gr.asyncCycles.toLocaleString('en-US')}); ` +
      `churn ${CONFIG.churn.steps.toLocaleString('en-US')} steps; acquire ${CONFIG.acquire.cycles.toLocaleString('en-US')} cycles; ` +
      `contended ${CONFIG.contended.acquisitions.toLocaleString('en-US')} acquisitions; memory ${CONFIG.memory.cycles.toLocaleString('en-US')} cycles\n`,
  );

  const script = wants('churn') ? churnScript() : null;
  for (let round = 0; round <= ROUNDS; round++) {
    const keep = round > 0;
    const r0 = Date.now();
    await runRound(round, keep, script);
    process.stderr.write(
      `${keep ? `round ${round}` : 'warm-up'} done in ${((Date.now() - r0) / 1000).toFixed(1)} s (so far: ${Object.entries(
        phaseSeconds,
      )
        .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
        .join(', ')})\n`,
    );
  }

  let churnMixes = null;
  if (wants('churn')) {
    churnMixes = {};
    for (const name of ['original', 'native', 'churn-floor']) {
      if (!IMPLS[name].available) continue;
      try {
        churnMixes[name] = churnMix(name, script);
      } catch (err) {
        churnMixes[name] = { error: String(err?.message) };
      }
    }
  }

  await stopIsolated();
  getReturnPools.clear();
  genericPools.clear();
  let memory = null;
  if (wants('memory')) {
    await settle();
    memory = {};
    // the original last: its growth is not returned to the OS and would hide the others' RSS
    for (const name of ['floor', 'native', 'original']) {
      if (!IMPLS[name].available) {
        memory[name] = { error: IMPLS[name].reason };
        continue;
      }
      if (!gc) {
        memory[name] = { error: 'needs --expose-gc' };
        continue;
      }
      const m0 = Date.now();
      try {
        memory[name] = await measureMemory(name, CONFIG.memory.poolSize, CONFIG.memory.cycles);
      } catch (err) {
        memory[name] = { error: String(err?.message).split('\n')[0] };
      }
      process.stderr.write(`memory ${name} done in ${((Date.now() - m0) / 1000).toFixed(1)} s\n`);
      await settle();
    }
    memory['generic-pool'] = { error: 'not measured (async, 10M cycles too slow)' };
  }

  console.log('');
  printTable(memory);
  printChurnMix(churnMixes);
  const targets = computeTargets(memory);
  printTargets(targets);
  const elapsed = (Date.now() - started) / 1000;
  const share = printLoad(info, elapsed);
  writeOutputs({ info, elapsed, churnMixes, memory, targets, share });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
