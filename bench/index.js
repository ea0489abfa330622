'use strict';

// npm run bench  (node --expose-gc bench/index.js)
//
// One process; every implementation measured on the same workloads with the
// same fake sockets (bench/fake-socket.js: an EventEmitter with destroy(), no
// I/O), interleaved round by round (the order rotates every round), one
// discarded warm-up round, then the median of ROUNDS rounds; target ratios are
// medians of per-round ratios. Pools and sockets are built outside the timed
// regions (get+return pools once, reused in every round, except the original's,
// rebuilt every round since D1 makes it grow; churn pools fresh every round),
// and a full GC runs before a measurement whenever garbage is pending.
// Workloads: get+return (same socket) and get+return in bursts of 16 on pools
// of 100, 10,000 and 100,000; newConnection churn on a full pool of 1,000;
// acquire+return on an idle pool; acquire contended (8 callers per
// connection, each holding it for one setImmediate); memory after 10M cycles.
// See bench/README.md.
//
// Implementations:
//   native         require('..'), this package (skipped as n/a while absent)
//   original       bench/original.js, a cost-faithful model of 0.1.5
//   floor          bench/floor.js, plain-JS typed-array heap, no checks
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

const path = require('path');
const fs = require('fs');
const os = require('os');
const { performance } = require('perf_hooks');

const Original = require('./original.js');
const Floor = require('./floor.js');
const WaitingFloor = require('./waiting-floor.js');
const { makeSockets } = require('./fake-socket.js');
const { getReturnChart } = require('./chart.js');

const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 7);
const SCALE = Number(process.env.BENCH_SCALE) || 1;
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const OUT = process.env.BENCH_OUT || path.join(__dirname, 'out');
const DOCS_SVG = path.join(__dirname, '..', 'docs', 'bench-get-return.svg');
const wants = (id) => !ONLY || ONLY.has(id);
const scaled = (n, min = 1) => Math.max(min, Math.round(n * SCALE));

const CONFIG = {
  rounds: ROUNDS,
  warmupRounds: 1,
  scale: SCALE,
  getReturn: { sizes: [100, 10000, 100000], syncCycles: scaled(1_000_000, 1000), asyncCycles: scaled(100_000, 100) },
  // bursts: `burst` gets, then the same sockets returned in a fixed shuffled
  // order, so that returns and leases go through the heap (a pool may lend a
  // socket returned just before without heap work, as the native one does)
  burst: { burst: 16, cycles: scaled(500_000, 1600) },
  churn: { maxSlots: 1000, slotRange: 2000, steps: scaled(200_000, 1000), mix: 'offer 70%, lend 10%, return 10%, leased socket dies (close) and is returned 10%', maxHeld: 64 },
  acquire: { poolSize: 100, cycles: scaled(200_000, 200) },
  contended: { connections: 100, callers: 800, acquisitions: scaled(200_000, 800) },
  memory: { poolSize: 100, cycles: scaled(10_000_000, 10000) },
  seed: 0xc0115e,
};

const gc = typeof global.gc === 'function' ? global.gc : null;
// A full GC before a measurement when the heap has grown since the last one
// (the original model and generic-pool leave garbage; the others do not), so
// that no implementation pays for another's garbage, without a full GC of a
// large live heap before every measurement.
const v8 = require('v8');
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

// ---------------------------------------------------------------------------
// implementations

function loadNative() {
  try {
    const Native = require('..');
    if (typeof Native !== 'function') return { error: 'require(\'..\') is not a constructor' };
    const probe = new Native({ MAX_SLOTS: 2 });
    for (const m of ['newConnection', 'getConnection', 'returnConnection']) {
      if (typeof probe[m] !== 'function') return { error: `no ${m}()` };
    }
    probe.on('error', () => {});
    const hasAcquire = typeof probe.acquire === 'function';
    if (typeof probe.close === 'function') probe.close();
    return { Native, hasAcquire };
  } catch (err) {
    return { error: `require('..') failed: ${String(err && err.message).split('\n')[0]}` };
  }
}

let genericPool = null;
try {
  genericPool = require('generic-pool');
} catch {
  genericPool = null;
}

const SELECTED = process.env.BENCH_IMPLS ? new Set(process.env.BENCH_IMPLS.split(',')) : null;
const native = !SELECTED || SELECTED.has('native') ? loadNative() : { error: 'not selected' };

const IMPLS = {
  native: { label: 'native (this package)', available: !native.error, reason: native.error },
  original: { label: 'original 0.1.5 (model)', available: true },
  floor: { label: 'plain-JS floor', available: true },
  'generic-pool': { label: 'generic-pool 3.9.0', available: !!genericPool, reason: genericPool ? undefined : 'generic-pool not installed' },
  'waiting-floor': { label: 'JS waiting floor', available: true },
};
if (SELECTED) {
  for (const [name, impl] of Object.entries(IMPLS)) {
    if (!SELECTED.has(name)) Object.assign(impl, { available: false, reason: 'not selected' });
  }
}

function syncCtor(name) {
  if (name === 'native') return native.Native;
  if (name === 'original') return Original;
  if (name === 'floor') return Floor;
  throw new Error(name);
}

function newPool(name, maxSlots) {
  const pool = new (syncCtor(name))({ MAX_SLOTS: maxSlots });
  if (typeof pool.on === 'function') pool.on('error', onPoolError);
  return pool;
}

let poolErrors = 0;
function onPoolError() {
  poolErrors++;
}

// One loop function per implementation, compiled separately, so that each has
// its own type feedback and no call site in the timed loop goes polymorphic.
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const loopCache = new Map();
function loopFor(kind, name) {
  const key = `${kind}:${name}`;
  if (!loopCache.has(key)) {
    const tag = `// ${key}\n`;
    let fn;
    if (kind === 'sync') {
      fn = new Function('pool', 'n', `${tag}for (let i = 0; i < n; i++) { const s = pool.getConnection(); pool.returnConnection(s); }`);
    } else if (kind === 'burst') {
      fn = new Function('pool', 'n', 'held', 'order', `${tag}
        const burst = held.length;
        for (let i = 0; i < n; i += burst) {
          for (let j = 0; j < burst; j++) held[j] = pool.getConnection();
          for (let j = 0; j < burst; j++) pool.returnConnection(held[order[j]]);
        }`);
    } else if (kind === 'gp') {
      fn = new AsyncFunction('pool', 'n', `${tag}for (let i = 0; i < n; i++) { const s = await pool.acquire(); pool.release(s); }`);
    } else if (kind === 'acquire') {
      fn = new AsyncFunction('pool', 'n', `${tag}for (let i = 0; i < n; i++) { const s = await pool.acquire(); pool.returnConnection(s); }`);
    } else if (kind === 'contended') {
      const release = name === 'generic-pool' ? 'release' : 'returnConnection';
      fn = new AsyncFunction('pool', 'state', 'immediate', `${tag}while (state.left > 0) { state.left--; const s = await pool.acquire(); await immediate(); pool.${release}(s); }`);
    } else if (kind === 'churn') {
      fn = new Function('pool', 'ops', 'slots', 'offers', 'held', 'maxHeld', `${tag}
        let next = 0;
        for (let i = 0; i < ops.length; i++) {
          let op = ops[i];
          if (op === 1 && held.length >= maxHeld) op = 2;
          else if (op === 2 && held.length === 0) op = 1;
          if (op === 0) {
            pool.newConnection(slots[i], offers[next++]);
          } else if (op === 1) {
            const s = pool.getConnection();
            if (s !== undefined) held.push(s);
          } else if (op === 2) {
            pool.returnConnection(held.shift());
          } else if (held.length > 0) {
            const s = held.shift();
            s.emit('close');
            pool.returnConnection(s);
          }
        }
        return next;`);
    } else {
      throw new Error(kind);
    }
    loopCache.set(key, fn);
  }
  return loopCache.get(key);
}

// ---------------------------------------------------------------------------
// seeded randomness, shared by every implementation

const { seededRandom: mulberry32 } = require('../examples/seeded-random.js');

function shuffledSlots(n, seed) {
  const rand = mulberry32(seed);
  const a = new Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

const fillOrder = new Map();
function slotsFor(size) {
  if (!fillOrder.has(size)) fillOrder.set(size, shuffledSlots(size, CONFIG.seed + size));
  return fillOrder.get(size);
}

function churnScript() {
  const { steps, slotRange, maxSlots } = CONFIG.churn;
  const rand = mulberry32(CONFIG.seed ^ 0x5eed);
  const ops = new Uint8Array(steps);
  const slots = new Float64Array(steps);
  let offers = 0;
  for (let i = 0; i < steps; i++) {
    const r = rand();
    ops[i] = r < 0.7 ? 0 : r < 0.8 ? 1 : r < 0.9 ? 2 : 3;
    slots[i] = Math.floor(rand() * slotRange);
    if (ops[i] === 0) offers++;
  }
  const initial = new Float64Array(maxSlots);
  for (let i = 0; i < maxSlots; i++) initial[i] = Math.floor(rand() * slotRange);
  return { ops, slots, offers, initial };
}

// ---------------------------------------------------------------------------
// measurements (each returns ns per operation)

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

function fillPool(pool, size) {
  const sockets = makeSockets(size);
  const slots = slotsFor(size);
  for (let i = 0; i < size; i++) pool.newConnection(slots[i], sockets[i]);
  return { sockets, lowest: sockets[slots.indexOf(0)] };
}

// Pools for get+return are built once per implementation and size and reused in
// every round (a get+return cycle leaves them as it found them), except the
// original's: its max heap grows by one node per cycle (D1), so it gets a fresh
// pool every round, as a freshly started 0.1.5 would (which favours it).
const getReturnPools = new Map();
function getReturnPool(name, size) {
  const key = `${name}:${size}`;
  let entry = getReturnPools.get(key);
  if (!entry || name === 'original') {
    getReturnPools.delete(key);
    const pool = newPool(name, size);
    const { lowest } = fillPool(pool, size);
    entry = { pool, lowest };
    if (name !== 'original') getReturnPools.set(key, entry);
  }
  return entry;
}

const DEBUG = !!process.env.BENCH_DEBUG;
function measureGetReturn(name, size, cycles) {
  const a = now();
  const { pool, lowest } = getReturnPool(name, size);
  const b = now();
  const s = pool.getConnection();
  if (s !== lowest) throw new Error(`${name}: getConnection() did not lend the lowest slot`);
  pool.returnConnection(s);
  const loop = loopFor('sync', name);
  const { t0, t1 } = timed(() => loop(pool, cycles));
  const check = pool.getConnection();
  if (check !== lowest) throw new Error(`${name}: lowest slot not lent after the run`);
  pool.returnConnection(check);
  if (name === 'original') dirty = true; // its pool (and D1's nodes) is garbage after this
  if (DEBUG) process.stderr.write(`  ${name} ${size}: setup ${(b - a).toFixed(0)} ms, gc ${(t0 - b).toFixed(0)} ms, run ${(t1 - t0).toFixed(0)} ms\n`);
  return ((t1 - t0) * 1e6) / cycles;
}

function measureBurst(name, size, cycles) {
  const { pool, lowest } = getReturnPool(name, size);
  const burst = CONFIG.burst.burst;
  const held = new Array(burst).fill(null);
  const order = shuffledSlots(burst, CONFIG.seed ^ burst);
  const loop = loopFor('burst', name);
  const n = Math.ceil(cycles / burst) * burst;
  const { t0, t1 } = timed(() => loop(pool, n, held, order));
  const check = pool.getConnection();
  if (check !== lowest) throw new Error(`${name}: lowest slot not lent after the bursts`);
  pool.returnConnection(check);
  if (name === 'original') dirty = true;
  return ((t1 - t0) * 1e6) / n;
}

function immediate() {
  return new Promise((resolve) => setImmediate(resolve));
}

async function newGenericPool(size) {
  const sockets = makeSockets(size);
  let next = 0;
  const pool = genericPool.createPool(
    {
      create: () => Promise.resolve(sockets[next++]),
      destroy: (socket) => {
        socket.destroy();
        return Promise.resolve();
      },
    },
    { max: size, min: size },
  );
  while (pool.available < size) await immediate();
  return pool;
}

const genericPools = new Map();
async function measureGenericGetReturn(size, cycles) {
  if (!genericPools.has(size)) genericPools.set(size, await newGenericPool(size));
  const pool = genericPools.get(size);
  const loop = loopFor('gp', 'generic-pool');
  const { t0, t1 } = await timedAsync(() => loop(pool, cycles));
  return ((t1 - t0) * 1e6) / cycles;
}

function measureChurn(name, script) {
  const { maxSlots, maxHeld } = CONFIG.churn;
  const pool = newPool(name, maxSlots);
  const initial = makeSockets(maxSlots);
  for (let i = 0; i < maxSlots; i++) pool.newConnection(script.initial[i], initial[i]);
  const offers = makeSockets(script.offers, maxSlots);
  const loop = loopFor('churn', name);
  let used;
  const { t0, t1 } = timed(() => {
    used = loop(pool, script.ops, script.slots, offers, [], maxHeld);
  });
  if (used !== script.offers) throw new Error('churn script mismatch');
  dirty = true;
  return ((t1 - t0) * 1e6) / script.ops.length;
}

// untimed: what the churn script does to each pool (kept / displaced / refused)
function churnMix(name, script) {
  const { maxSlots, maxHeld } = CONFIG.churn;
  const pool = newPool(name, maxSlots);
  const initial = makeSockets(maxSlots);
  for (let i = 0; i < maxSlots; i++) pool.newConnection(script.initial[i], initial[i]);
  const offers = makeSockets(script.offers, maxSlots);
  const mix = { kept: 0, keptAfterDisplacing: 0, refused: 0, lent: 0, returned: 0, died: 0, finalSlotCount: 0 };
  const held = [];
  let next = 0;
  for (let i = 0; i < script.ops.length; i++) {
    let op = script.ops[i];
    if (op === 1 && held.length >= maxHeld) op = 2;
    else if (op === 2 && held.length === 0) op = 1;
    if (op === 0) {
      const socket = offers[next++];
      const before = pool.slotCount;
      pool.newConnection(script.slots[i], socket);
      if (socket.destroyed) mix.refused++;
      else if (before < maxSlots) mix.kept++;
      else mix.keptAfterDisplacing++;
    } else if (op === 1) {
      const s = pool.getConnection();
      if (s !== undefined) {
        held.push(s);
        mix.lent++;
      }
    } else if (op === 2) {
      pool.returnConnection(held.shift());
      mix.returned++;
    } else if (held.length > 0) {
      const s = held.shift();
      s.emit('close');
      pool.returnConnection(s);
      mix.died++;
    }
  }
  mix.finalSlotCount = pool.slotCount;
  return mix;
}

async function measureAcquire(name, size, cycles) {
  let pool;
  let loop;
  if (name === 'generic-pool') {
    pool = await newGenericPool(size);
    loop = loopFor('gp', 'generic-pool-acquire');
  } else {
    pool = name === 'native' ? newPool('native', size) : new WaitingFloor();
    fillPool(pool, size);
    loop = loopFor('acquire', name);
  }
  const { t0, t1 } = await timedAsync(() => loop(pool, cycles));
  return ((t1 - t0) * 1e6) / cycles;
}

async function measureContended(name, connections, callers, acquisitions) {
  let pool;
  if (name === 'generic-pool') {
    pool = await newGenericPool(connections);
  } else {
    pool = name === 'native' ? newPool('native', connections) : new WaitingFloor();
    fillPool(pool, connections);
  }
  const worker = loopFor('contended', name);
  const state = { left: acquisitions };
  const { t0, t1 } = await timedAsync(() => {
    const workers = [];
    for (let i = 0; i < callers; i++) workers.push(worker(pool, state, immediate));
    return Promise.all(workers);
  });
  return ((t1 - t0) * 1e6) / acquisitions;
}

async function settle() {
  // full GCs with turns of the event loop between them, so that freed array
  // buffers and external memory are accounted before a reading
  for (let i = 0; i < 3; i++) {
    collect(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function measureMemory(name, size, cycles) {
  const pool = newPool(name, size);
  fillPool(pool, size);
  const loop = loopFor('sync', name);
  loop(pool, 1000); // settle lazy allocations before the baseline
  await settle();
  const m0 = process.memoryUsage();
  const t0 = now();
  const chunk = 1_000_000;
  for (let done = 0; done < cycles; done += chunk) loop(pool, Math.min(chunk, cycles - done));
  const t1 = now();
  await settle();
  const m1 = process.memoryUsage();
  const alive = pool.getConnection() !== undefined; // keeps the pool alive up to here
  const heap = m1.heapUsed - m0.heapUsed;
  const external = m1.external - m0.external;
  return {
    cycles,
    nsPerCycle: ((t1 - t0) * 1e6) / cycles,
    heapBytes: heap,
    externalBytes: external,
    rssBytes: m1.rss - m0.rss,
    bytesPerCycle: (heap + external) / cycles,
    alive,
  };
}

// ---------------------------------------------------------------------------
// running

const results = {}; // workload id -> { title, unit, impls: { name: { rounds: [], error? } } }
function record(id, title, unit, name, value, error) {
  if (!results[id]) results[id] = { title, unit, impls: {} };
  const slot = results[id].impls[name] || (results[id].impls[name] = { rounds: [] });
  if (error) slot.error = error;
  else if (value !== undefined) slot.rounds.push(value);
}

function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function rotate(list, by) {
  const k = by % list.length;
  return list.slice(k).concat(list.slice(0, k));
}

// rows in a fixed order, whatever runs first
const ROW_ORDER = ['getreturn-100', 'getreturn-10000', 'getreturn-100000', 'burst-100', 'burst-10000', 'burst-100000', 'churn', 'acquire-idle', 'acquire-contended'];
function orderedIds() {
  return [...ROW_ORDER.filter((id) => results[id]), ...Object.keys(results).filter((id) => !ROW_ORDER.includes(id))];
}

async function attempt(id, title, unit, name, keep, fn) {
  const entry = results[id] && results[id].impls[name];
  if (entry && entry.error) return; // failed before: do not retry every round
  try {
    const value = await fn();
    if (keep) record(id, title, unit, name, value);
  } catch (err) {
    record(id, title, unit, name, undefined, String(err && err.message).split('\n')[0]);
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
      for (const name of rotate(['native', 'original', 'floor', 'generic-pool'], round)) {
        if (!IMPLS[name].available) {
          skip(id, title, 'ns/cycle', name, IMPLS[name].reason);
          continue;
        }
        if (name === 'generic-pool') {
          await attempt(id, title, 'ns/cycle', name, keep, () => measureGenericGetReturn(size, CONFIG.getReturn.asyncCycles));
        } else {
          await attempt(id, title, 'ns/cycle', name, keep, () => measureGetReturn(name, size, CONFIG.getReturn.syncCycles));
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
      for (const name of rotate(['native', 'original', 'floor'], round)) {
        if (!IMPLS[name].available) skip(id, title, 'ns/cycle', name, IMPLS[name].reason);
        else await attempt(id, title, 'ns/cycle', name, keep, () => measureBurst(name, size, CONFIG.burst.cycles));
      }
    }
  }
  phase('burst', t0);
  t0 = Date.now();
  if (wants('churn')) {
    const id = 'churn';
    const title = `newConnection churn, pool ${CONFIG.churn.maxSlots.toLocaleString('en-US')}`;
    for (const name of rotate(['native', 'original'], round)) {
      if (!IMPLS[name].available) {
        skip(id, title, 'ns/step', name, IMPLS[name].reason);
        continue;
      }
      await attempt(id, title, 'ns/step', name, keep, () => measureChurn(name, script));
    }
    skip(id, title, 'ns/step', 'floor', 'no displacement');
    skip(id, title, 'ns/step', 'generic-pool', 'no slots');
  }
  phase('churn', t0);
  t0 = Date.now();
  if (wants('acquire')) {
    const id = 'acquire-idle';
    const title = `acquire+return, idle pool ${CONFIG.acquire.poolSize}`;
    for (const name of rotate(['native', 'generic-pool', 'waiting-floor'], round)) {
      if (!IMPLS[name].available) skip(id, title, 'ns/cycle', name, IMPLS[name].reason);
      else if (name === 'native' && !native.hasAcquire) skip(id, title, 'ns/cycle', name, 'no acquire()');
      else await attempt(id, title, 'ns/cycle', name, keep, () => measureAcquire(name, CONFIG.acquire.poolSize, CONFIG.acquire.cycles));
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
      else await attempt(id, title, 'ns/acquire', name, keep, () => measureContended(name, connections, callers, acquisitions));
    }
  }
  phase('contended', t0);
}

function fmt(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

function pad(s, n, left = false) {
  s = String(s);
  return left ? s.padStart(n) : s.padEnd(n);
}

function printTable(memory) {
  const cols = ['native', 'original', 'floor', 'generic-pool', 'waiting-floor'];
  const w0 = 44;
  const w1 = 11;
  const wc = 14;
  const lines = [];
  lines.push(pad('workload (median of ' + ROUNDS + ' rounds)', w0) + pad('unit', w1) + cols.map((c) => pad(c, wc, true)).join(''));
  lines.push('-'.repeat(w0 + w1 + wc * cols.length));
  for (const id of orderedIds()) {
    const r = results[id];
    const cells = cols.map((c) => {
      const e = r.impls[c];
      if (!e) return pad('', wc, true);
      const med = median(e.rounds);
      if (med === null) return pad('n/a', wc, true);
      const spread = e.rounds.length > 1 ? (100 * (Math.max(...e.rounds) - Math.min(...e.rounds))) / med : 0;
      return pad(`${fmt(med)} ±${spread.toFixed(0)}%`, wc, true);
    });
    lines.push(pad(r.title, w0) + pad(r.unit, w1) + cells.join(''));
  }
  if (memory) {
    const row = (title, unit, f) =>
      lines.push(pad(title, w0) + pad(unit, w1) + cols.map((c) => pad(memory[c] ? (memory[c].error ? 'n/a' : f(memory[c])) : '', wc, true)).join(''));
    const n = CONFIG.memory.cycles.toLocaleString('en-US');
    row(`memory: ${n} get+return, pool ${CONFIG.memory.poolSize}`, 'B/cycle', (m) => m.bytesPerCycle.toFixed(3));
    row('  heap growth (after full GC)', 'MB', (m) => (m.heapBytes / 1e6).toFixed(2));
    row('  external growth', 'MB', (m) => (m.externalBytes / 1e6).toFixed(2));
    row('  RSS growth', 'MB', (m) => (m.rssBytes / 1e6).toFixed(1));
    row('  time per cycle over the whole run', 'ns/cycle', (m) => fmt(m.nsPerCycle));
  }
  console.log(lines.join('\n'));
  const notes = new Map(); // "name: reason" -> workloads
  const note = (name, reason, what) => {
    const key = `${name}: n/a (${reason})`;
    if (!notes.has(key)) notes.set(key, []);
    notes.get(key).push(what);
  };
  for (const id of orderedIds()) {
    for (const [name, e] of Object.entries(results[id].impls)) {
      if (e.error && !['no displacement', 'no slots'].includes(e.error)) note(name, e.error, results[id].title);
    }
  }
  if (memory) for (const [name, m] of Object.entries(memory)) if (m.error) note(name, m.error, 'memory');
  if (notes.size) {
    console.log('\nnot measured:');
    for (const [key, what] of notes) console.log(`  ${key}: ${what.join('; ')}`);
  }
}

function med(id, name) {
  const e = results[id] && results[id].impls[name];
  return e ? median(e.rounds) : null;
}

function rounds(id, name) {
  const e = results[id] && results[id].impls[name];
  return e && !e.error && e.rounds.length ? e.rounds : null;
}

// a / b: the median of the per-round ratios when both were measured in every
// round (each pair measured close together in time, which cancels the
// machine's drift), else the ratio of the medians
function pairedRatio(idA, a, idB, b) {
  const ra = rounds(idA, a);
  const rb = rounds(idB, b);
  if (!ra || !rb) return null;
  if (ra.length === rb.length) return median(ra.map((x, i) => x / rb[i]));
  return median(ra) / median(rb);
}

function computeTargets(memory) {
  const t = [];
  const add = (target, measured, goal, op, note) => {
    const pass = measured === null ? null : op === '>=' ? measured >= goal : measured <= goal;
    t.push({ target, measured, goal: `${op} ${goal}`, status: pass === null ? 'n/a' : pass ? 'met' : 'MISSED', note });
  };
  for (const [prefix, what] of [['getreturn', 'get+return'], ['burst', `bursts of ${CONFIG.burst.burst}`]]) {
    for (const size of CONFIG.getReturn.sizes) {
      const id = `${prefix}-${size}`;
      if (!results[id]) continue;
      const s = size.toLocaleString('en-US');
      add(`#4 ${what} ${s}: original / native (x faster)`, pairedRatio(id, 'original', id, 'native'), 4, '>=');
      add(`#4 ${what} ${s}: native / floor (x slower)`, pairedRatio(id, 'native', id, 'floor'), 2.5, '<=');
    }
    if (results[`${prefix}-100000`] && results[`${prefix}-100`]) {
      add(`#4 ${what}, log growth: native 100,000 / native 100`, pairedRatio(`${prefix}-100000`, 'native', `${prefix}-100`, 'native'), 2, '<=');
    }
  }
  add('#4 churn: original / native (x faster)', pairedRatio('churn', 'original', 'churn', 'native'), 3, '>=');
  const mem = memory && memory.native && !memory.native.error ? memory.native.bytesPerCycle : null;
  add(`#4 memory: native bytes per cycle over ${CONFIG.memory.cycles.toLocaleString('en-US')} cycles`, mem, 0.1, '<=', 'heap+external growth after full GC; 0.1 B/cycle = 1 MB per 10M cycles');
  add('#5 acquire idle: generic-pool / native (x throughput)', pairedRatio('acquire-idle', 'generic-pool', 'acquire-idle', 'native'), 3, '>=');
  add('#5 acquire idle: native / waiting floor (x time)', pairedRatio('acquire-idle', 'native', 'acquire-idle', 'waiting-floor'), 1.5, '<=');
  add('#5 contended: generic-pool / native (x throughput)', pairedRatio('acquire-contended', 'generic-pool', 'acquire-contended', 'native'), 1.5, '>=');
  add('#5 contended: native / waiting floor (x time)', pairedRatio('acquire-contended', 'native', 'acquire-contended', 'waiting-floor'), 1.5, '<=');
  // references, no target
  const refs = [];
  for (const size of CONFIG.getReturn.sizes) {
    const id = `getreturn-${size}`;
    const s = size.toLocaleString('en-US');
    refs.push({ what: `get+return ${s}: original / floor`, value: pairedRatio(id, 'original', id, 'floor') });
    refs.push({ what: `get+return ${s}: generic-pool / native`, value: pairedRatio(id, 'generic-pool', id, 'native') });
    refs.push({ what: `bursts of ${CONFIG.burst.burst} ${s}: original / floor`, value: pairedRatio(`burst-${size}`, 'original', `burst-${size}`, 'floor') });
  }
  refs.push({ what: 'get+return, log growth: floor 100,000 / floor 100', value: pairedRatio('getreturn-100000', 'floor', 'getreturn-100', 'floor') });
  refs.push({ what: 'get+return, log growth: original 100,000 / original 100', value: pairedRatio('getreturn-100000', 'original', 'getreturn-100', 'original') });
  refs.push({ what: 'acquire idle: generic-pool / waiting floor', value: pairedRatio('acquire-idle', 'generic-pool', 'acquire-idle', 'waiting-floor') });
  refs.push({ what: 'contended: generic-pool / waiting floor', value: pairedRatio('acquire-contended', 'generic-pool', 'acquire-contended', 'waiting-floor') });
  return { targets: t, references: refs };
}

function printTargets({ targets, references }) {
  const lines = ['', 'targets (issues 4 and 5): ratios are medians of the per-round ratios (pairs measured in the same round):'];
  for (const x of targets) {
    lines.push(`  ${pad(x.target, 62)} ${pad(x.measured === null ? 'n/a' : x.measured.toFixed(2), 8, true)}  goal ${pad(x.goal, 7)}  ${x.status}`);
  }
  lines.push('references:');
  for (const r of references) lines.push(`  ${pad(r.what, 62)} ${pad(r.value === null ? 'n/a' : r.value.toFixed(2), 8, true)}`);
  console.log(lines.join('\n'));
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0] ? cpus[0].model : 'unknown',
    cores: cpus.length,
    memoryGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    napi: process.versions.napi,
    gcExposed: !!gc,
    loadAverageAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  };
}

async function main() {
  const started = Date.now();
  const info = machine();
  console.log(`callosum-client-tcp bench: ${info.cpu}, ${info.cores} cores, Node ${info.node}, ${info.platform}`);
  console.log(`native: ${IMPLS.native.available ? 'loaded' + (native.hasAcquire ? ' (with acquire)' : ' (no acquire)') : 'n/a (' + IMPLS.native.reason + ')'}`);
  if (!gc) console.log('warning: run with --expose-gc (npm run bench) for the memory figures and GC between measurements');
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
    process.stderr.write(`${keep ? 'round ' + round : 'warm-up'} done in ${((Date.now() - r0) / 1000).toFixed(1)} s (so far: ${Object.entries(phaseSeconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')})\n`);
  }

  let churnMixes = null;
  if (wants('churn')) {
    churnMixes = {};
    for (const name of ['original', 'native']) {
      if (!IMPLS[name].available) continue;
      try {
        churnMixes[name] = churnMix(name, script);
      } catch (err) {
        churnMixes[name] = { error: String(err && err.message) };
      }
    }
  }

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
        memory[name] = { error: String(err && err.message).split('\n')[0] };
      }
      process.stderr.write(`memory ${name} done in ${((Date.now() - m0) / 1000).toFixed(1)} s\n`);
      await settle();
    }
    memory['generic-pool'] = { error: 'not measured (async, 10M cycles too slow)' };
  }

  console.log('');
  printTable(memory);
  if (churnMixes) {
    console.log(`\nchurn script: ${CONFIG.churn.steps.toLocaleString('en-US')} steps (${CONFIG.churn.mix}), offered slots uniform in [0, ${CONFIG.churn.slotRange}), MAX_SLOTS ${CONFIG.churn.maxSlots}; what each pool did with the offers:`);
    for (const [name, mix] of Object.entries(churnMixes)) {
      console.log(`  ${pad(name, 9)} ${mix.error ? 'n/a (' + mix.error + ')' : `kept ${mix.kept}, kept displacing the highest ${mix.keptAfterDisplacing}, refused ${mix.refused}; lent ${mix.lent}, returned ${mix.returned}, died while leased ${mix.died}; slotCount at end ${mix.finalSlotCount}`}`);
    }
  }
  const targets = computeTargets(memory);
  printTargets(targets);
  const share = cpuShare.wallMs > 0 ? cpuShare.cpuMs / cpuShare.wallMs : null;
  if (share !== null) {
    console.log(`\nprocess CPU time / wall time in the timed regions: ${(100 * share).toFixed(0)}% (about 100% when the bench has a core to itself; GC helper threads can add a little)`);
  }
  if (poolErrors) console.log(`\nnote: the pools emitted ${poolErrors} 'error' events during the run`);

  const elapsed = (Date.now() - started) / 1000;
  info.loadAverageAtEnd = os.loadavg().map((x) => +x.toFixed(2));
  console.log(`\ntotal ${elapsed.toFixed(0)} s; load average (1, 5, 15 min) at start ${info.loadAverageAtStart.join(', ')}, at end ${info.loadAverageAtEnd.join(', ')} (${info.cores} cores)`);

  const summary = {};
  for (const id of orderedIds()) {
    const r = results[id];
    summary[id] = { title: r.title, unit: r.unit, impls: {} };
    for (const [name, e] of Object.entries(r.impls)) {
      summary[id].impls[name] = e.error ? { median: null, error: e.error } : { median: median(e.rounds), rounds: e.rounds };
    }
  }
  const out = {
    date: new Date().toISOString(),
    elapsedSeconds: elapsed,
    machine: info,
    config: CONFIG,
    implementations: Object.fromEntries(Object.entries(IMPLS).map(([k, v]) => [k, { label: v.label, available: v.available, reason: v.reason }])),
    nativeHasAcquire: !!native.hasAcquire,
    workloads: summary,
    churnMix: churnMixes,
    memory,
    ...targets,
    poolErrors,
    cpuShareOfTimedRegions: share,
  };
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(out, null, 2) + '\n');

  if (wants('getreturn') || wants('burst')) {
    const series = [];
    if (wants('getreturn')) {
      for (const name of ['native', 'original', 'floor', 'generic-pool']) {
        series.push({
          name,
          label: IMPLS[name].label,
          points: CONFIG.getReturn.sizes.map((size) => ({ size, ns: med(`getreturn-${size}`, name) })),
        });
      }
    }
    if (wants('burst')) {
      for (const name of ['native', 'original', 'floor']) {
        series.push({
          name,
          dash: true,
          label: `${name}, bursts of ${CONFIG.burst.burst}`,
          points: CONFIG.getReturn.sizes.map((size) => ({ size, ns: med(`burst-${size}`, name) })),
        });
      }
    }
    const svg = getReturnChart(series, {
      title: 'callosum-client-tcp: ns per get + return (median of ' + ROUNDS + ' rounds, lower is better)',
      subtitle: `${info.cpu}, ${info.cores} cores, Node ${info.node}; generic-pool is async acquire/release; dashed: ${CONFIG.burst.burst} gets, then ${CONFIG.burst.burst} returns`,
    });
    fs.writeFileSync(path.join(OUT, 'get-return.svg'), svg);
    if (!process.env.BENCH_NO_DOCS && SCALE === 1 && !ONLY && !SELECTED) {
      fs.mkdirSync(path.dirname(DOCS_SVG), { recursive: true });
      fs.writeFileSync(DOCS_SVG, svg);
    }
  }
  console.log(`wrote ${path.relative(process.cwd(), path.join(OUT, 'results.json'))}${wants('getreturn') || wants('burst') ? ' and get-return.svg' : ''}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
