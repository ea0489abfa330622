'use strict';

// What the bench runs and how much: the environment variables read once, and
// the workload sizes every other file takes from here, so that a run's
// results.json records exactly what was measured.

const path = require('node:path');

const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 7);
const SCALE = Number(process.env.BENCH_SCALE) || 1;
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const OUT = process.env.BENCH_OUT || path.join(__dirname, 'out');
const DOCS_SVG = path.join(__dirname, '..', 'docs', 'bench-get-return.svg');
const wants = (id) => !ONLY || ONLY.has(id);
const scaled = (n, min = 1) => Math.max(min, Math.round(n * SCALE));
const SELECTED = process.env.BENCH_IMPLS ? new Set(process.env.BENCH_IMPLS.split(',')) : null;
const DEBUG = !!process.env.BENCH_DEBUG;

const CONFIG = {
  rounds: ROUNDS,
  warmupRounds: 1,
  scale: SCALE,
  getReturn: { sizes: [100, 10000, 100000], syncCycles: scaled(1_000_000, 1000), asyncCycles: scaled(100_000, 100) },
  // bursts: `burst` gets, then the same sockets returned in a fixed shuffled
  // order, so that returns and leases go through the heap (a pool may lend a
  // socket returned just before without heap work, as the native one does)
  burst: { burst: 16, cycles: scaled(500_000, 1600) },
  churn: {
    maxSlots: 1000,
    slotRange: 2000,
    steps: scaled(200_000, 1000),
    mix: 'offer 70%, lend 10%, return 10%, leased socket dies (close) and is returned 10%',
    maxHeld: 64,
  },
  // issue 20: the same get+return loops on a pool built with { adaptive: true },
  // measured next to the plain native pool in every round (which of the two
  // goes first alternates), so that their per-round difference is a pair
  adaptive: { sizes: [100], budgetNs: 15 },
  acquire: { poolSize: 100, cycles: scaled(200_000, 200) },
  contended: { connections: 100, callers: 800, acquisitions: scaled(200_000, 800) },
  memory: { poolSize: 100, cycles: scaled(10_000_000, 10000) },
  seed: 0xc0115e,
};

module.exports = { ROUNDS, SCALE, ONLY, OUT, DOCS_SVG, SELECTED, DEBUG, CONFIG, wants };
