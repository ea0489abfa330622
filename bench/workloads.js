'use strict';

// The workloads: each measure* function builds its pool outside the timed
// region, runs one timed loop and returns ns per operation; churnMix replays
// the churn script untimed and counts what the pool did with each offer.

const { makeSockets } = require('../__test__/fixtures/fake-socket.js');
const { CONFIG, DEBUG } = require('./config.js');
const { newPool, genericPool, WaitingFloor } = require('./implementations.js');
const { loopFor } = require('./loops.js');
const { shuffledSlots, slotsFor } = require('./inputs.js');
const { markDirty, now, timed, timedAsync, settle } = require('./timing.js');

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
  if (name === 'original') markDirty(); // its pool (and D1's nodes) is garbage after this
  if (DEBUG)
    process.stderr.write(
      `  ${name} ${size}: setup ${(b - a).toFixed(0)} ms, gc ${(t0 - b).toFixed(0)} ms, run ${(t1 - t0).toFixed(0)} ms\n`,
    );
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
  if (name === 'original') markDirty();
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
  markDirty();
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

module.exports = {
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
};
