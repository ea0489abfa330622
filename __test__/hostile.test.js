'use strict';

// Bad and hostile input. SPEC B1-B7 and D8: every report is an 'error' event
// with a coded Error, and the pool is left exactly as it was; the constructor
// and acquire() refuse bad options with coded errors. Issue 12, fault 2: every
// public method survives any argument a caller can construct: Proxies whose
// traps throw, revoked Proxies, throwing getters, null-prototype and frozen
// objects, symbols, bigints, functions. The answer is a coded 'error' event (a
// rejected promise for acquire, a throw with a code only from setup calls),
// never an uncoded throw, and the pool is left as it was. fast-check generates
// the values and the order of the calls.

const test = require('node:test');
const assert = require('node:assert/strict');
const { setImmediate: tick } = require('node:timers/promises');
const fc = require('fast-check');

const { socket, client, rejectsWith, CallosumClient } = require('./helpers.js');
const { codes } = require('../lib/errors.js');

// A pool with known contents (slot 1 leased, slots 2 and 3 idle) and a
// snapshot of them, to prove "unchanged".
function seeded() {
  const c = client({ MAX_SLOTS: 3 });
  c.newConnection(1, socket());
  c.newConnection(2, socket());
  c.newConnection(3, socket());
  assert.equal(c.getConnection()._slot, 1);
  return c;
}

function snapshot(c) {
  return c.stats();
}

const TRAPS = [
  'get',
  'set',
  'has',
  'ownKeys',
  'getOwnPropertyDescriptor',
  'getPrototypeOf',
  'defineProperty',
  'deleteProperty',
  'isExtensible',
  'preventExtensions',
  'apply',
];

function boom() {
  throw new Error('hostile');
}

// A value built from a recipe, so fast-check can shrink and print it.
// The properties a 'getters' look-alike may make throw when read.
const GETTER_KEYS = [
  'on',
  'destroy',
  'destroyed',
  'constructor',
  '_slot',
  'readableLength',
  'timeout',
  'signal',
  Symbol.toStringTag,
];

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
      for (const key of GETTER_KEYS) {
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
    throwing: fc.subarray(GETTER_KEYS.map(String), { minLength: 1 }),
  }),
  fc.record({ kind: fc.constant('frozen-socket') }),
  fc.record({ kind: fc.constant('null-proto') }),
  fc.record({
    kind: fc.constant('value'),
    value: fc.oneof(
      fc.anything(),
      fc.constantFrom(Symbol('s'), 10n, NaN, -0, () => {}),
    ),
  }),
);

// What the pool looks like from outside; a hostile call must not change it.
function outside(c, lent) {
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
  return { c, lent, before: outside(c, lent) };
}

test('B1: bad arguments never throw, emit a coded Error naming the value, change nothing', () => {
  const c = seeded();
  const before = snapshot(c);
  const bad = [
    () => c.newConnection('x', socket()),
    () => c.newConnection(1, { not: 'a socket' }),
    () => c.newConnection(),
    () => c.returnConnection(42),
    () => c.returnConnection(null),
  ];
  for (const call of bad) assert.doesNotThrow(call);
  assert.equal(c.errors.length, 5);
  for (const err of c.errors) {
    assert.ok(err instanceof Error);
    assert.equal(typeof err.code, 'string');
  }
  assert.match(c.errors[0].message, /'x'/);
  assert.match(c.errors[3].message, /42/);
  assert.match(c.errors[4].message, /null/);
  assert.deepEqual(snapshot(c), before);
  assert.equal(c.getConnection()._slot, 2, 'still lends as before');
});

test('B1: with no error listener, bad input warns instead of throwing', async () => {
  const c = new CallosumClient({ MAX_SLOTS: 1 });
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    assert.doesNotThrow(() => c.returnConnection(socket()));
    await new Promise((r) => setImmediate(r));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].code, 'ERR_CALLOSUM_NOT_LEASED');
  } finally {
    process.off('warning', onWarning);
  }
});

for (const slot of [-1, 1.5, NaN, Infinity, 2 ** 53, '3', null, undefined, 3n, {}]) {
  test(`B2: slot ${typeof slot === 'bigint' ? '3n' : String(slot)} is refused and the socket destroyed`, () => {
    const c = seeded();
    const before = snapshot(c);
    const s = socket();
    c.newConnection(slot, s);
    assert.equal(c.errors.length, 1);
    assert.equal(c.errors[0].code, 'ERR_CALLOSUM_INVALID_SLOT');
    assert.equal(s.destroyed, true);
    assert.deepEqual(snapshot(c), before);
  });
}

test('B2: the largest safe integer is a valid slot', () => {
  const c = client({ MAX_SLOTS: 2 });
  const s = socket();
  c.newConnection(Number.MAX_SAFE_INTEGER, s);
  assert.equal(c.getConnection(), s);
  assert.equal(s._slot, Number.MAX_SAFE_INTEGER);
});

test('B3: a socket already held (idle, leased or displaced) offered again is left alone', () => {
  const c = client({ MAX_SLOTS: 2 });
  const idle = socket(),
    leased = socket(),
    displaced = socket();
  c.newConnection(5, idle);
  c.newConnection(9, displaced);
  c.getConnection(); // idle's slot 5
  c.returnConnection(idle);
  c.newConnection(9, socket()); // refused (full)
  assert.equal(c.getConnection(), idle);
  assert.equal(c.getConnection(), displaced);
  c.newConnection(1, leased); // displaces leased `displaced`
  const before = snapshot(c);
  c.errors.length = 0;
  c.newConnection(0, idle);
  c.newConnection(0, leased);
  c.newConnection(0, displaced);
  assert.deepEqual(
    c.errors.map((e) => e.code),
    Array(3).fill('ERR_CALLOSUM_SOCKET_HELD'),
  );
  assert.ok(![idle, leased, displaced].some((s) => s.destroyed));
  assert.deepEqual(snapshot(c), before);
});

test('B3: a socket held by another pool is not taken over', () => {
  const a = client({ MAX_SLOTS: 2 });
  const b = client({ MAX_SLOTS: 2 });
  const s = socket();
  a.newConnection(1, s);
  b.newConnection(1, s);
  assert.equal(b.errors[0].code, 'ERR_CALLOSUM_SOCKET_HELD');
  assert.equal(b.slotCount, 0);
  assert.equal(a.getConnection(), s);
  b.returnConnection(s);
  assert.equal(b.errors[1].code, 'ERR_CALLOSUM_NOT_LEASED');
  a.returnConnection(s);
  assert.deepEqual(a.errors, []);
});

for (const [name, value] of [
  ['a plain object', {}],
  ['a number', 7],
  ['null', null],
  ['a function', () => {}],
]) {
  test(`B3: ${name} offered as a socket gets a coded error`, () => {
    const c = seeded();
    const before = snapshot(c);
    c.newConnection(1, value);
    assert.equal(c.errors[0].code, 'ERR_CALLOSUM_NOT_A_SOCKET');
    assert.deepEqual(snapshot(c), before);
  });
}

test('B3: a frozen or non-extensible socket-like object is refused before anything is kept', () => {
  const c = client({ MAX_SLOTS: 1 });
  const fake = Object.preventExtensions({ on() {}, destroy() {} });
  c.newConnection(1, fake);
  assert.equal(c.errors[0].code, 'ERR_CALLOSUM_NOT_A_SOCKET');
  assert.equal(c.slotCount, 0);
  const s = socket();
  c.newConnection(2, s);
  assert.equal(c.getConnection(), s);
});

test('B5: returnConnection of anything not lent now is refused; nothing adopted, destroyed or lent twice', () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket(),
    b = socket(),
    foreign = socket();
  c.newConnection(1, a);
  c.newConnection(2, b);
  const lent = c.getConnection();
  c.returnConnection(lent);
  for (const value of [undefined, null, 3, 'a', {}, foreign, a /* second return */, b /* idle, never lent */]) {
    c.returnConnection(value);
  }
  assert.equal(c.errors.length, 8);
  assert.ok(c.errors.every((e) => e.code === 'ERR_CALLOSUM_NOT_LEASED'));
  assert.equal(foreign.destroyed, false);
  assert.equal(c.slotCount, 2);
  assert.equal(c.getConnection(), a);
  assert.equal(c.getConnection(), b);
  assert.equal(c.getConnection(), undefined);
});

test('B7: the constructor throws coded TypeError/RangeError for bad MAX_SLOTS', () => {
  const expectThrow = (options, Ctor, code) =>
    assert.throws(
      () => new CallosumClient(options),
      (err) => err instanceof Ctor && err.code === code,
    );
  expectThrow({ MAX_SLOTS: '10' }, TypeError, 'ERR_INVALID_ARG_TYPE');
  expectThrow({ MAX_SLOTS: -1 }, RangeError, 'ERR_OUT_OF_RANGE');
  expectThrow({ MAX_SLOTS: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE');
  expectThrow({ MAX_SLOTS: Infinity }, RangeError, 'ERR_OUT_OF_RANGE');
  expectThrow({ MAX_SLOTS: 2 ** 53 }, RangeError, 'ERR_OUT_OF_RANGE');
  expectThrow({ maxWaiting: -2 }, RangeError, 'ERR_OUT_OF_RANGE');
  expectThrow('big', TypeError, 'ERR_INVALID_ARG_TYPE');
  assert.equal(new CallosumClient({ MAX_SLOTS: undefined }).MAX_SLOTS, 100);
  assert.equal(new CallosumClient(null).MAX_SLOTS, 100);
});

test('D8: slots are checked: strings and NaN are refused, order is numeric', () => {
  const c = client({ MAX_SLOTS: 3 });
  const s10 = socket(),
    s9 = socket(),
    str = socket(),
    nan = socket();
  c.newConnection(10, s10);
  c.newConnection(9, s9);
  c.newConnection('2', str);
  c.newConnection(NaN, nan);
  assert.deepEqual(
    c.errors.map((e) => e.code),
    ['ERR_CALLOSUM_INVALID_SLOT', 'ERR_CALLOSUM_INVALID_SLOT'],
  );
  assert.equal(str.destroyed, true);
  assert.equal(nan.destroyed, true);
  assert.equal(c.getConnection(), s9, '9 < 10 as numbers');
  assert.equal(c.slotCount, 2);
});

test('E4: bad options reject with coded errors', async () => {
  const c = client({ MAX_SLOTS: 1 });
  await rejectsWith(c.acquire('soon'), 'ERR_INVALID_ARG_TYPE');
  await rejectsWith(c.acquire({ timeout: -1 }), 'ERR_OUT_OF_RANGE');
  await rejectsWith(c.acquire({ timeout: '10' }), 'ERR_INVALID_ARG_TYPE');
  await rejectsWith(c.acquire({ signal: {} }), 'ERR_INVALID_ARG_TYPE');
  assert.equal(c.waiting, 0);
});

test('E4: a timeout beyond what timers honour is refused, not turned into 1 ms', async () => {
  const c = client({ MAX_SLOTS: 1 });
  await rejectsWith(c.acquire({ timeout: 2 ** 31 }), 'ERR_OUT_OF_RANGE');
  const waiting = c.acquire({ timeout: Infinity });
  await tick();
  assert.equal(c.waiting, 1);
  c.close();
  await rejectsWith(waiting, 'ERR_CALLOSUM_CLOSED');
});

test('E4: a signal without removeEventListener is refused; one that throws cannot break a hand-off', async () => {
  const c = client({ MAX_SLOTS: 1 });
  await rejectsWith(c.acquire({ signal: { aborted: false, addEventListener() {} } }), 'ERR_INVALID_ARG_TYPE');
  const hostile = {
    aborted: false,
    addEventListener() {},
    removeEventListener() {
      throw new Error('no');
    },
  };
  const p = c.acquire({ signal: hostile });
  const s = socket();
  assert.doesNotThrow(() => c.newConnection(1, s));
  assert.equal(await p, s);
  assert.equal(c.stats().leased, 1);
});

test('no public method throws for a hostile argument; errors are coded; the pool is left as it was', (t) => {
  let reported = 0;
  let kept = 0;
  fc.assert(
    fc.property(recipe, fc.constantFrom(...Object.keys(calls)), fc.nat(10), (r, call, n) => {
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
      const after = outside(c, lent);
      if (
        c.errors.length === 0 &&
        c.counters().offersKept === 5 &&
        (call === 'newConnectionSocket' || call === 'insertSocket' || call === 'newConnectionSlot')
      ) {
        // A look-alike that is a usable socket (on and destroy callable, its
        // throwing getters elsewhere), or a slot that is valid (-0): kept, as
        // any socket would be.
        kept++;
        return;
      }
      // Getters and counters make no decision; the others refuse: nothing changed.
      assert.deepEqual(after, before);
    }),
    { numRuns: 3000 },
  );
  assert.ok(reported > 1000, `only ${reported} errors reported`);
  t.diagnostic(`${reported} errors reported; ${kept} usable look-alikes or valid slots kept`);
});

test('acquire rejects a hostile options value with a coded error, never throws, never waits', async () => {
  const c = client({ MAX_SLOTS: 2 });
  await fc.assert(
    fc.asyncProperty(recipe, async (r) => {
      const value = build(r);
      let promise;
      assert.doesNotThrow(() => {
        promise = c.acquire(value);
      });
      promise.catch(() => {}); // waits left pending are rejected by close() below
      if (value === undefined || value === null) {
        // No options: waits (the pool is empty); leave it by closing a spare client.
        return;
      }
      const outcome = await Promise.race([
        promise.then(
          () => 'resolved',
          (e) => e,
        ),
        new Promise((res) => setImmediate(() => res('pending'))),
      ]);
      if (outcome === 'pending') {
        // Options that read as empty ({} with no throwing getter): a real wait.
        assert.ok(c.waiting > 0);
        return;
      }
      assert.ok(outcome instanceof Error, String(outcome));
      assert.ok(codes.includes(outcome.code), outcome.code);
    }),
    { numRuns: 1000 },
  );
  const p = c.close();
  await p;
  assert.equal(c.waiting, 0);
});

test('the constructors, close() and rove() throw or report only coded errors for hostile options', () => {
  const { Rover } = CallosumClient;
  fc.assert(
    fc.property(recipe, (r) => {
      const value = build(r);
      for (const make of [
        () => new CallosumClient(value),
        () => new Rover(value),
        () => new Rover({ servers: value }),
      ]) {
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
    }),
    { numRuns: 1500 },
  );
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
  const destroyed = Object.getOwnPropertyDescriptor(
    Object.getPrototypeOf(Object.getPrototypeOf(turncoat)),
    'destroyed',
  ) ?? {
    get() {
      return false;
    },
  };
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
