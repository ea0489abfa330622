'use strict';

// SPEC B1-B8: what bad input and faults get. Every report is an 'error' event
// with a coded Error, and the pool is left exactly as it was.

const test = require('node:test');
const assert = require('node:assert/strict');
const { socket, client, CallosumClient } = require('./helpers.js');

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
  const idle = socket(), leased = socket(), displaced = socket();
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
  assert.deepEqual(c.errors.map((e) => e.code), Array(3).fill('ERR_CALLOSUM_SOCKET_HELD'));
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

for (const [name, value] of [['a plain object', {}], ['a number', 7], ['null', null], ['a function', () => {}]]) {
  test(`B3: ${name} offered as a socket gets a coded error`, () => {
    const c = seeded();
    const before = snapshot(c);
    c.newConnection(1, value);
    assert.equal(c.errors[0].code, 'ERR_CALLOSUM_NOT_A_SOCKET');
    assert.deepEqual(snapshot(c), before);
  });
}

test('B4: an already destroyed socket is not kept and takes no slot', () => {
  const c = client({ MAX_SLOTS: 1 });
  const dead = socket();
  dead.destroy();
  c.newConnection(0, dead);
  assert.equal(c.slotCount, 0);
  assert.equal(c.getConnection(), undefined);
  const live = socket();
  c.newConnection(5, live);
  assert.equal(c.getConnection(), live);
});

test('B5: returnConnection of anything not lent now is refused; nothing adopted, destroyed or lent twice', () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket(), b = socket(), foreign = socket();
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

test('B6: a displaced socket still leased keeps an error listener until returned', () => {
  const c = client({ MAX_SLOTS: 1 });
  const high = socket();
  c.newConnection(9, high);
  c.getConnection();
  c.newConnection(1, socket());
  assert.ok(high.listenerCount('error') >= 1);
  assert.doesNotThrow(() => high.emit('error', new Error('late fault')));
  assert.equal(c.slotCount, 1);
  c.returnConnection(high);
  assert.deepEqual(c.errors, []);
});

test('B7: the constructor throws coded TypeError/RangeError for bad MAX_SLOTS', () => {
  const expectThrow = (options, Ctor, code) =>
    assert.throws(() => new CallosumClient(options), (err) => err instanceof Ctor && err.code === code);
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

test('B8: slotCount never exceeds MAX_SLOTS under displacement churn', () => {
  const c = client({ MAX_SLOTS: 3 });
  const leased = [];
  for (let slot = 100; slot > 0; slot--) {
    c.newConnection(slot, socket());
    const s = c.getConnection();
    if (s) leased.push(s);
    assert.ok(c.slotCount <= 3);
  }
  for (const s of leased) c.returnConnection(s);
  assert.equal(c.slotCount, 3);
  assert.deepEqual(c.errors, []);
  const st = c.stats();
  assert.equal(st.lowestSlot, 1);
  assert.equal(st.highestSlot, 3);
});

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

test('B8: a leased socket that got end (half open) is destroyed when returned', async () => {
  const net = require('node:net');
  const { once } = require('node:events');
  const server = net.createServer({ allowHalfOpen: true }, (peer) => peer.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const s = net.connect({ port: server.address().port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  try {
    const c = client({ MAX_SLOTS: 1 });
    c.newConnection(0, s);
    assert.equal(c.getConnection(), s);
    s.resume();
    await once(s, 'end');
    assert.equal(c.slotCount, 0, 'its slot freed on end');
    assert.equal(s.destroyed, false, 'not destroyed under its user');
    c.returnConnection(s);
    assert.equal(s.destroyed, true, 'the pool closes what it owned');
    assert.deepEqual(c.errors, []);
  } finally {
    s.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('C8: marks are kept true when the pool itself destroys a socket', () => {
  const c = client({ MAX_SLOTS: 1 });
  const high = socket();
  c.newConnection(9, high);
  c.getConnection();
  c.newConnection(1, socket()); // displaces leased `high`
  c.returnConnection(high);
  assert.deepEqual([high.destroyed, high._destroyed, high._leased], [true, true, false]);
  const idle = c.getConnection();
  c.returnConnection(idle);
  c.close();
  assert.deepEqual([idle.destroyed, idle._destroyed, idle._leased], [true, true, false]);
});
