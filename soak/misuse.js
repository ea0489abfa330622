'use strict';

// Misuse of a client, as a careless or hostile caller would: bad and hostile
// arguments, returns of sockets it does not hold, offers of sockets already
// held. Each call must not throw, must report a coded 'error' event (acquire:
// a rejected promise with a code), and must leave the pool as it was.

const net = require('node:net');
const { inspect } = require('node:util');
const { safeMessage } = require('./invariants.js');

function boom() {
  throw new Error('hostile trap');
}

const THROWING_TRAPS = {
  get: boom,
  set: boom,
  has: boom,
  ownKeys: boom,
  getOwnPropertyDescriptor: boom,
  defineProperty: boom,
  deleteProperty: boom,
  getPrototypeOf: boom,
  setPrototypeOf: boom,
  isExtensible: boom,
  preventExtensions: boom,
  apply: boom,
  construct: boom,
};

function revoked(target) {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

// Values no method should accept as a socket, each built fresh: [label, make].
const HOSTILE = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['a number', () => 42],
  ['NaN', () => NaN],
  ['a string', () => 'socket'],
  ['a symbol', () => Symbol('s')],
  ['a bigint', () => 7n],
  ['a function', () => function notASocket() {}],
  ['an empty object', () => ({})],
  ['an array', () => []],
  ['a null-prototype object', () => Object.create(null)],
  ['a frozen socket-like', () => Object.freeze({ on() {}, destroy() {} })],
  ['on/destroy not functions', () => ({ on: 1, destroy: 'x' })],
  ['a Proxy with throwing traps', () => new Proxy({}, THROWING_TRAPS)],
  ['a function Proxy with throwing traps', () => new Proxy(function f() {}, THROWING_TRAPS)],
  ['a revoked Proxy', () => revoked({})],
  ['a revoked function Proxy', () => revoked(function f() {})],
  [
    'a throwing `on` getter',
    () => ({
      get on() {
        return boom();
      },
      destroy() {},
    }),
  ],
  [
    'a throwing `constructor` getter',
    () => ({
      get constructor() {
        return boom();
      },
    }),
  ],
  ['a throwing Symbol.toPrimitive and toString', () => ({ [Symbol.toPrimitive]: boom, toString: boom, valueOf: boom })],
  ['a throwing inspect.custom', () => ({ [inspect.custom]: boom })],
  ['a Proxy of a net.Socket with throwing traps', () => new Proxy(new net.Socket(), THROWING_TRAPS)],
  ['a frozen net.Socket', () => Object.freeze(new net.Socket())],
];

// Slots newConnection must refuse.
const BAD_SLOTS = [
  ['-1', () => -1],
  ['1.5', () => 1.5],
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['2^53', () => 2 ** 53],
  ['"3"', () => '3'],
  ['null', () => null],
  ['undefined', () => undefined],
  ['3n', () => 3n],
  ['-0.5', () => -0.5],
  ['a boxed number', () => Object(3)],
  ...HOSTILE.filter(([label]) => label.includes('Proxy') || label.includes('throwing')),
];

// Options acquire must reject.
const BAD_ACQUIRE_OPTIONS = [
  ['a number', () => 42],
  ['a string', () => 'fast'],
  ['a symbol', () => Symbol('o')],
  ['timeout -1', () => ({ timeout: -1 })],
  ['timeout "10"', () => ({ timeout: '10' })],
  ['timeout NaN', () => ({ timeout: NaN })],
  ['timeout 2^31', () => ({ timeout: 2 ** 31 })],
  ['signal {}', () => ({ signal: {} })],
  ['signal a throwing Proxy', () => ({ signal: new Proxy({}, THROWING_TRAPS) })],
  [
    'a throwing `timeout` getter',
    () => ({
      get timeout() {
        return boom();
      },
    }),
  ],
  ['a Proxy with throwing traps', () => new Proxy({}, THROWING_TRAPS)],
  ['a revoked Proxy', () => revoked({})],
];

const STATS_FIELDS = ['slotCount', 'idle', 'leased', 'displaced', 'lowestSlot', 'highestSlot', 'waiting', 'closed'];

function snapshot(client) {
  const s = client.stats();
  const out = {};
  for (const k of STATS_FIELDS) out[k] = s[k];
  return out;
}

function diff(a, b) {
  const out = [];
  for (const k of STATS_FIELDS) if (a[k] !== b[k]) out.push(`${k} ${a[k]} -> ${b[k]}`);
  return out.join(', ');
}

class Misuse {
  constructor({ tracker, violations, random }) {
    this.tracker = tracker;
    this.v = violations;
    this.random = random;
    this.calls = new Map(); // label -> count
    this.total = 0;
  }

  pick(list) {
    return list[Math.floor(this.random() * list.length)];
  }

  // Runs one synchronous misuse call on `sc`: it must not throw, must emit at
  // least one coded 'error' event, and (unless `changes`) leave the pool as
  // it was.
  expect(sc, label, fn, { changes = false } = {}) {
    this.total++;
    const kind = label.split(':')[0];
    this.calls.set(kind, (this.calls.get(kind) || 0) + 1);
    const before = changes ? null : snapshot(sc.client);
    const errorsBefore = sc.errorEvents;
    try {
      fn();
    } catch (err) {
      this.v.add('misuse-threw', `client ${sc.index} ${label}: threw ${safeMessage(err)}`, kind);
    }
    if (sc.errorEvents === errorsBefore) {
      this.v.add('misuse-silent', `client ${sc.index} ${label}: no 'error' event`, kind);
    }
    if (before !== null) {
      const after = snapshot(sc.client);
      const d = diff(before, after);
      if (d !== '') this.v.add('misuse-changed-pool', `client ${sc.index} ${label}: ${d}`, kind);
    }
  }

  // One random misuse on `sc`; `others` are the other clients (for foreign
  // sockets).
  once(sc, others) {
    const client = sc.client;
    const r = this.random();
    if (r < 0.3) {
      const [label, make] = this.pick(HOSTILE);
      this.expect(sc, `returnConnection(hostile): ${label}`, () => client.returnConnection(make()));
    } else if (r < 0.45) {
      const [label, make] = this.pick(HOSTILE);
      this.expect(sc, `newConnection(0, hostile): ${label}`, () => client.newConnection(0, make()));
    } else if (r < 0.6) {
      const [label, make] = this.pick(BAD_SLOTS);
      const fresh = new net.Socket();
      this.expect(sc, `newConnection(bad slot): ${label}`, () => client.newConnection(make(), fresh));
      if (!fresh.destroyed) {
        this.v.add(
          'bad-slot-socket-kept',
          `client ${sc.index} newConnection(${label}, socket): the offered socket was not destroyed`,
        );
        fresh.destroy();
      }
    } else if (r < 0.7) {
      this.expect(sc, 'returnConnection(foreign): a never connected net.Socket', () =>
        client.returnConnection(new net.Socket()),
      );
    } else if (r < 0.8) {
      // A socket another client lent to one of its workers.
      const other = others[Math.floor(this.random() * others.length)];
      const held = other === sc ? undefined : this.heldBy(other);
      if (held === undefined) return this.once(sc, others);
      this.expect(sc, "returnConnection(foreign): another client's lent socket", () => client.returnConnection(held));
      if (held.destroyed && this.tracker.isHeld(held)) {
        this.v.add('misuse-hurt-holder', `client ${sc.index}: returning another client's lent socket destroyed it`);
      }
    } else if (r < 0.9) {
      // An idle socket of this client: a return of a socket not lent.
      const idle = this.tracker.idleCandidates(sc);
      if (idle.length === 0) return this.once(sc, others);
      const s = idle[Math.floor(this.random() * idle.length)];
      this.expect(sc, 'returnConnection(idle): a socket this client holds idle', () => client.returnConnection(s));
    } else {
      // A socket this client lent, offered to it again.
      const held = this.heldBy(sc);
      if (held === undefined) return this.once(sc, others);
      this.expect(sc, 'newConnection(held): a socket this client lent', () => client.newConnection(held._slot, held));
      if (held.destroyed)
        this.v.add('misuse-hurt-holder', `client ${sc.index}: offering a lent socket again destroyed it`);
    }
    return undefined;
  }

  heldBy(sc) {
    for (const s of sc.kept) {
      if (this.tracker.isHeld(s) && !s.destroyed) return s;
    }
    return undefined;
  }

  // acquire() with options it must reject: no throw, a rejection with a code.
  // Resolves when settled.
  async acquire(sc) {
    const [label, make] = this.pick(BAD_ACQUIRE_OPTIONS);
    const kind = 'acquire(bad options)';
    this.total++;
    this.calls.set(kind, (this.calls.get(kind) || 0) + 1);
    const before = snapshot(sc.client);
    let promise;
    try {
      promise = sc.client.acquire(make());
    } catch (err) {
      this.v.add('misuse-threw', `client ${sc.index} acquire(${label}): threw ${safeMessage(err)}`, kind);
      return;
    }
    const d = diff(before, snapshot(sc.client));
    if (d !== '') this.v.add('misuse-changed-pool', `client ${sc.index} acquire(${label}): ${d}`, kind);
    try {
      const socket = await promise;
      this.v.add('misuse-accepted', `client ${sc.index} acquire(${label}) resolved with a socket`, kind);
      // Give it back properly.
      if (this.tracker.onLease(sc, socket, 'acquire')) {
        this.tracker.onRelease(socket);
        sc.client.returnConnection(socket);
      }
    } catch (err) {
      this.tracker.onError(sc, err, `acquire(${label}) rejection`);
    }
  }
}

module.exports = { Misuse, HOSTILE, BAD_SLOTS, BAD_ACQUIRE_OPTIONS, snapshot, diff };
