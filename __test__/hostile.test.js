'use strict';

// Issue 12, fault 2: every public method survives any argument a caller can
// construct: Proxies whose traps throw, revoked Proxies, throwing getters,
// null-prototype and frozen objects, symbols, bigints, functions. The answer
// is a coded 'error' event (a rejected promise for acquire, a throw with a
// code only from setup calls), never an uncoded throw, and the pool is left as
// it was. fast-check generates the values and the order of the calls.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fc = require('fast-check');

const { socket, client } = require('./helpers.js');
const { codes } = require('../lib/errors.js');

const TRAPS = ['get', 'set', 'has', 'ownKeys', 'getOwnPropertyDescriptor', 'getPrototypeOf',
  'defineProperty', 'deleteProperty', 'isExtensible', 'preventExtensions', 'apply'];

function boom() {
  throw new Error('hostile');
}

// A value built from a recipe, so fast-check can shrink and print it.
function build(recipe) {
  switch (recipe.kind) {
    case 'proxy': {
      const handler = {};
      for (const trap of recipe.traps) handler[trap] = boom;
      return new Proxy(recipe.fn ? function target() {} : {}, handler);
    }
    case 'revoked': {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    }
    case 'getters': {
      // A socket look-alike whose chosen properties throw when read.
      const o = recipe.nullProto ? Object.create(null) : {};
      for (const key of ['on', 'destroy', 'destroyed', 'constructor', '_slot', 'readableLength', 'timeout', 'signal', Symbol.toStringTag]) {
        if (recipe.throwing.includes(String(key))) Object.defineProperty(o, key, { get: boom });
        else if (key === 'on' || key === 'destroy') o[key] = () => o;
      }
      return recipe.frozen ? Object.freeze(o) : o;
    }
    case 'frozen-socket':
      return Object.freeze(socket());
    case 'null-proto':
      return Object.create(null);
    default:
      return recipe.value;
  }
}

const recipe = fc.oneof(
  fc.record({ kind: fc.constant('proxy'), traps: fc.subarray(TRAPS, { minLength: 1 }), fn: fc.boolean() }),
  fc.record({ kind: fc.constant('revoked') }),
  fc.record({
    kind: fc.constant('getters'),
    nullProto: fc.boolean(),
    frozen: fc.boolean(),
    throwing: fc.subarray(['on', 'destroy', 'destroyed', 'constructor', '_slot', 'readableLength', 'timeout', 'signal', 'Symbol(Symbol.toStringTag)'], { minLength: 1 }),
  }),
  fc.record({ kind: fc.constant('frozen-socket') }),
  fc.record({ kind: fc.constant('null-proto') }),
  fc.record({ kind: fc.constant('value'), value: fc.oneof(fc.anything(), fc.constantFrom(Symbol('s'), 10n, NaN, -0, () => {})) }),
);

// What the pool looks like from outside; a hostile call must not change it.
function snapshot(c, lent) {
  return { stats: c.stats(), slotCount: c.slotCount, waiting: c.waiting, lent: lent.map((s) => s._leased) };
}

// The calls a caller can make with a hostile value `v` (and a slot `n`).
const calls = {
  newConnectionSocket: (c, v, n) => c.newConnection(n, v),
  newConnectionSlot: (c, v) => c.newConnection(v, socket()),
  insertSocket: (c, v, n) => c.insertSocket(n, v),
  returnConnection: (c, v) => c.returnConnection(v),
  getConnection: (c, v) => {
    // Takes no argument: lends the lowest idle socket (slot 2) whatever it gets.
    const s = c.getConnection(v);
    assert.equal(s._slot, 2);
    c.returnConnection(s);
  },
  stats: (c, v) => c.stats(v),
  counters: (c, v) => c.counters(v),
};

// A pool with kept, idle and lent sockets, and what it looks like.
function busyPool() {
  const c = client({ MAX_SLOTS: 4 });
  for (let i = 0; i < 4; i++) c.newConnection(i, socket());
  const lent = [c.getConnection(), c.getConnection()];
  return { c, lent, before: snapshot(c, lent) };
}

test('no public method throws for a hostile argument; errors are coded; the pool is left as it was', () => {
  let reported = 0;
  let kept = 0;
  fc.assert(fc.property(recipe, fc.constantFrom(...Object.keys(calls)), fc.nat(10), (r, call, n) => {
    const { c, lent, before } = busyPool();
    c.errors.length = 0;
    const value = build(r);
    calls[call](c, value, n);
    for (const err of c.errors) {
      assert.ok(err instanceof Error);
      assert.equal(typeof err.code, 'string');
      assert.ok(codes.includes(err.code), err.code);
      assert.equal(typeof err.message, 'string');
    }
    reported += c.errors.length;
    const after = snapshot(c, lent);
    if (c.errors.length === 0 && c.counters().offersKept === 5 &&
        (call === 'newConnectionSocket' || call === 'insertSocket' || call === 'newConnectionSlot')) {
      // A look-alike that is a usable socket (on and destroy callable, its
      // throwing getters elsewhere), or a slot that is valid (-0): kept, as
      // any socket would be.
      kept++;
      return;
    }
    // Getters and counters make no decision; the others refuse: nothing changed.
    assert.deepEqual(after, before);
  }), { numRuns: 3000 });
  assert.ok(reported > 1000, `only ${reported} errors reported`);
});

test('acquire rejects a hostile options value with a coded error, never throws, never waits', async () => {
  const c = client({ MAX_SLOTS: 2 });
  await fc.assert(fc.asyncProperty(recipe, async (r) => {
    const value = build(r);
    let promise;
    assert.doesNotThrow(() => { promise = c.acquire(value); });
    promise.catch(() => {}); // waits left pending are rejected by close() below
    if (value === undefined || value === null) {
      // No options: waits (the pool is empty); leave it by closing a spare client.
      return;
    }
    const outcome = await Promise.race([promise.then(() => 'resolved', (e) => e), new Promise((res) => setImmediate(() => res('pending')))]);
    if (outcome === 'pending') {
      // Options that read as empty ({} with no throwing getter): a real wait.
      assert.ok(c.waiting > 0);
      return;
    }
    assert.ok(outcome instanceof Error, String(outcome));
    assert.ok(codes.includes(outcome.code), outcome.code);
  }), { numRuns: 1000 });
  const p = c.close();
  await p;
  assert.equal(c.waiting, 0);
});

test('the constructors, close() and rove() throw or report only coded errors for hostile options', () => {
  const CallosumClient = require('..');
  const { Rover } = CallosumClient;
  fc.assert(fc.property(recipe, (r) => {
    const value = build(r);
    for (const make of [() => new CallosumClient(value), () => new Rover(value), () => new Rover({ servers: value })]) {
      try {
        make();
      } catch (err) {
        assert.ok(err instanceof Error);
        assert.ok(codes.includes(err.code), `${err.code}: ${err.message}`);
      }
    }
    const c = client();
    assert.doesNotThrow(() => c.close(value));
    for (const err of c.errors) assert.ok(codes.includes(err.code), err.code);
    const d = client();
    try {
      d.rove(value, value);
    } catch (err) {
      assert.ok(codes.includes(err.code), `${err.code}: ${err.message}`);
    }
    d.close();
  }), { numRuns: 1500 });
});

test('a kept socket that starts throwing (a revoked Proxy cannot be kept; a getter that turns hostile) is dropped, reported, and never lent', () => {
  const c = client({ MAX_SLOTS: 3 });
  const { proxy, revoke } = Proxy.revocable(socket(), {});
  c.newConnection(0, proxy);
  assert.equal(c.slotCount, 0, 'a Proxy is not kept');
  assert.equal(c.errors.at(-1).code, 'ERR_CALLOSUM_NOT_A_SOCKET');
  revoke();

  const turncoat = socket();
  let hostile = false;
  const destroyed = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Object.getPrototypeOf(turncoat)), 'destroyed')
    ?? { get() { return false; } };
  Object.defineProperty(turncoat, 'destroyed', {
    get() {
      if (hostile) throw new Error('now hostile');
      return destroyed.get.call(this);
    },
  });
  c.newConnection(1, turncoat);
  c.newConnection(2, socket());
  assert.equal(c.slotCount, 2);
  hostile = true;
  const got = c.getConnection();
  assert.notEqual(got, turncoat);
  assert.equal(got._slot, 2);
  assert.equal(c.slotCount, 1);
  assert.equal(c.errors.at(-1).code, 'ERR_CALLOSUM_NOT_A_SOCKET');
  c.returnConnection(got);
  assert.equal(c.stats().idle, 1);
});
