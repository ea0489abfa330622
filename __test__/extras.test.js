'use strict';

// SPEC E1, E2, E3 (loading), E5: what this module adds to the original.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');
const { socket, client } = require('./helpers.js');

const root = path.join(__dirname, '..');

test('E1: close() destroys idle now, leased on return, then lends nothing and refuses offers', () => {
  const c = client({ MAX_SLOTS: 4 });
  const [a, b, d] = [socket(), socket(), socket()];
  c.newConnection(1, a);
  c.newConnection(2, b);
  c.newConnection(3, d);
  const lent = c.getConnection();
  c.returnConnection(c.getConnection()); // a queued return, applied by close
  c.close();
  assert.equal(c.closed, true);
  assert.equal(lent, a);
  assert.deepEqual([a.destroyed, b.destroyed, d.destroyed], [false, true, true]);
  assert.equal(c.stats().idle, 0);
  assert.equal(c.getConnection(), undefined);
  c.returnConnection(a);
  assert.equal(a.destroyed, true);
  assert.equal(c.slotCount, 0);
  const late = socket();
  c.newConnection(0, late);
  assert.equal(late.destroyed, true);
  assert.deepEqual(c.errors, []);
});

test('E2: stats() reports idle, leased, displaced, slotCount, lowest and highest slot', () => {
  const c = client({ MAX_SLOTS: 3 });
  assert.deepEqual(c.stats(), {
    maxSlots: 3, slotCount: 0, idle: 0, leased: 0, displaced: 0,
    lowestSlot: null, highestSlot: null, waiting: 0, heldBytes: 0, maxHeldBytes: 65536, closed: false,
  });
  c.newConnection(4, socket());
  c.newConnection(8, socket());
  c.newConnection(6, socket());
  c.getConnection(); // 4
  c.getConnection(); // 6
  c.getConnection(); // 8
  c.newConnection(2, socket()); // displaces leased 8
  c.returnConnection(c.getConnection()); // lends 2, returns it
  assert.deepEqual(c.stats(), {
    maxSlots: 3, slotCount: 3, idle: 1, leased: 2, displaced: 1,
    lowestSlot: 2, highestSlot: 6, waiting: 0, heldBytes: 0, maxHeldBytes: 65536, closed: false,
  });
  assert.equal(c.slotCount, 3);
});

test('E3: require and import give the same constructor', () => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
    import C, { CallosumClient, Rover } from ${JSON.stringify(path.join(root, 'index.mjs'))};
    import { createRequire } from 'node:module';
    const req = createRequire(import.meta.url)(${JSON.stringify(root)});
    const c = new C({ MAX_SLOTS: 3 });
    console.log(C === req, CallosumClient === C, typeof Rover, c.MAX_SLOTS);
  `], { encoding: 'utf8' });
  assert.equal(out.trim(), 'true true function 3');
});

test('E3: the package exports map resolves for require and import by name', () => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
    import C from 'callosum-client-tcp';
    import { createRequire } from 'node:module';
    console.log(C === createRequire(import.meta.url)('callosum-client-tcp'));
  `], { encoding: 'utf8', cwd: root });
  assert.equal(out.trim(), 'true');
});

test('E5: NODE_DEBUG=callosum logs kept, displaced, refused and dropped decisions', () => {
  const script = `
    const C = require(${JSON.stringify(root)});
    const net = require('node:net');
    const c = new C({ MAX_SLOTS: 1 });
    const a = new net.Socket();
    c.newConnection(5, a);
    c.newConnection(2, new net.Socket());
    c.newConnection(9, new net.Socket());
    c.getConnection().emit('close');
  `;
  const withDebug = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8', env: { ...process.env, NODE_DEBUG: 'callosum' },
  });
  const log = withDebug.stderr;
  assert.match(log, /CALLOSUM \d+: kept slot 5/);
  assert.match(log, /displaced idle slot 5: destroyed/);
  assert.match(log, /refused slot 9: pool full, highest kept slot 2/);
  assert.match(log, /dropped slot 2 \(socket ended\)/);
  const quiet = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8', env: { ...process.env, NODE_DEBUG: '' },
  });
  assert.equal(quiet.stderr, '', 'silent when NODE_DEBUG does not name callosum');
});

test('many pools at once, collected and replaced, never see each other', async () => {
  const v8 = require('node:v8');
  const vm = require('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = global.gc ?? vm.runInNewContext('gc');
  const make = (n) => Array.from({ length: n }, (_, i) => {
    const c = client({ MAX_SLOTS: 2 });
    c.newConnection(i, socket());
    return c;
  });
  make(200); // garbage: their native pools are freed and their ids reused
  await new Promise((r) => setImmediate(r));
  gc();
  await new Promise((r) => setImmediate(r));
  const pools = make(50);
  pools.forEach((c, i) => {
    const s = c.getConnection();
    assert.equal(s._slot, i);
    assert.equal(c.getConnection(), undefined);
    c.returnConnection(s);
  });
  pools.forEach((c, i) => assert.deepEqual([c.slotCount, c.stats().idle, c.stats().lowestSlot], [1, 1, i]));
});

test('the addon works in worker threads, each with its own pools', async () => {
  const { Worker } = require('node:worker_threads');
  const code = `
    const { parentPort } = require('node:worker_threads');
    const C = require(${JSON.stringify(root)});
    const net = require('node:net');
    const c = new C({ MAX_SLOTS: 2 });
    const a = new net.Socket(), b = new net.Socket();
    c.newConnection(4, a); c.newConnection(1, b);
    const s = c.getConnection();
    c.returnConnection(s);
    parentPort.postMessage([s === b, c.slotCount]);
  `;
  const results = await Promise.all([1, 2, 3].map(() => new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once('message', resolve);
    w.once('error', reject);
  })));
  assert.deepEqual(results, [[true, 2], [true, 2], [true, 2]]);
});
