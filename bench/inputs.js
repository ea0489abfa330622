'use strict';

// The workloads' inputs, from one seed, so that every implementation gets the
// same fill order and the same churn script in every round and every run.

const { seededRandom: mulberry32 } = require('../examples/seeded-random.js');
const { CONFIG } = require('./config.js');

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

module.exports = { shuffledSlots, slotsFor, churnScript };
