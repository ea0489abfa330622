'use strict';

// SPEC B8: thousands of mixed operations (offers, leases, returns, socket
// faults, double returns, bad input) against a model, with every invariant
// checked after every step.

const test = require('node:test');
const assert = require('node:assert/strict');
const { socket, client, rng } = require('./helpers.js');

function run(seed, maxSlots, steps) {
  const rand = rng(seed);
  const c = client({ MAX_SLOTS: maxSlots });
  // The model: every socket the pool holds, with its slot and state.
  const held = new Map(); // socket -> { slot, state: 'idle' | 'leased' | 'displaced' }
  const deadLent = new Set(); // died while lent: one quiet return owed
  const offered = new Set();
  const brokenByTest = new Set(); // destroyed by the test, 'close' not yet emitted
  const pick = (state) => {
    const list = [...held].filter(([, e]) => state === undefined || e.state === state);
    return list.length ? list[rand(list.length)][0] : undefined;
  };
  const keptEntries = () => [...held.values()].filter((e) => e.state !== 'displaced');
  let expectedErrors = 0;

  for (let step = 0; step < steps; step++) {
    const ctx = `seed ${seed} step ${step}`;
    const op = rand(100);
    if (op < 30) {
      // Offer a new socket on a slot no held socket has (identities stay exact).
      const used = new Set([...held.values()].map((e) => e.slot));
      let slot = rand(maxSlots * 4);
      while (used.has(slot)) slot = (slot + 1) % (maxSlots * 4);
      const s = socket();
      offered.add(s);
      const kept = keptEntries();
      const highest = kept.reduce((m, e) => (e.slot > m.slot ? e : m), { slot: -1 });
      c.newConnection(slot, s);
      if (kept.length < maxSlots) {
        assert.equal(s.destroyed, false, ctx);
        held.set(s, { slot, state: 'idle' });
      } else if (slot >= highest.slot) {
        assert.equal(s.destroyed, true, `${ctx}: refused socket destroyed`);
      } else {
        held.set(s, { slot, state: 'idle' });
        const [victim] = [...held].find(([, e]) => e === highest);
        if (highest.state === 'idle') {
          assert.equal(victim.destroyed, true, `${ctx}: idle victim destroyed`);
          held.delete(victim);
        } else {
          if (!brokenByTest.has(victim)) {
            assert.equal(victim.destroyed, false, `${ctx}: leased victim left to its user`);
          }
          highest.state = 'displaced';
        }
      }
    } else if (op < 55) {
      const got = c.getConnection();
      // Destroyed idle sockets below the one lent are dropped on the way.
      const idle = [...held].filter(([, e]) => e.state === 'idle').sort((a, b) => a[1].slot - b[1].slot);
      let expect;
      for (const [s, e] of idle) {
        if (s.destroyed) {
          held.delete(s);
          continue;
        }
        expect = s;
        e.state = 'leased';
        break;
      }
      assert.equal(got, expect, `${ctx}: lends the lowest idle live socket`);
    } else if (op < 80) {
      const s = pick('leased') ?? pick('displaced') ?? [...deadLent][0];
      if (s === undefined) continue;
      const e = held.get(s);
      c.returnConnection(s);
      if (e === undefined) {
        deadLent.delete(s); // its quiet return
      } else if (e.state === 'displaced' || s.destroyed) {
        assert.equal(s.destroyed, true, ctx);
        held.delete(s);
      } else {
        e.state = 'idle';
      }
    } else if (op < 86) {
      // Misuse: a double return, a foreign socket, or garbage.
      const choices = [pick('idle'), socket(), 17, null];
      c.returnConnection(choices[rand(choices.length)]);
      expectedErrors++;
    } else if (op < 89) {
      // Misuse: offer a held socket again, or a bad slot.
      const s = pick();
      if (s !== undefined && rand(2) === 0) {
        c.newConnection(1, s);
      } else {
        const bad = socket();
        offered.add(bad);
        c.newConnection(-1, bad);
      }
      expectedErrors++;
    } else if (op < 97) {
      // A socket fault: an event, or destroy() whose 'close' comes later.
      const s = pick();
      if (s === undefined) continue;
      const e = held.get(s);
      const fault = rand(4);
      if (fault === 3) {
        s.destroy();
        brokenByTest.add(s);
        continue; // dropped when lent or returned, or on 'close'
      }
      s.emit(['end', 'error', 'close'][fault], fault === 1 ? new Error('fault') : undefined);
      held.delete(s);
      if (e.state !== 'idle') deadLent.add(s);
      else assert.equal(s.destroyed, true, `${ctx}: a dropped idle socket is destroyed`);
    } else {
      // Return everything lent, in random order.
      for (const s of [...held.keys()].filter((x) => held.get(x).state !== 'idle')) {
        const e = held.get(s);
        c.returnConnection(s);
        if (e.state === 'displaced' || s.destroyed) held.delete(s);
        else e.state = 'idle';
      }
    }

    // Invariants, after every step.
    const st = c.stats();
    const kept = keptEntries();
    assert.equal(c.errors.length, expectedErrors, `${ctx}: errors ${c.errors.map((x) => x.code)}`);
    assert.ok(
      c.errors.every((x) => typeof x.code === 'string'),
      ctx,
    );
    assert.ok(c.slotCount <= maxSlots, `${ctx}: over MAX_SLOTS`);
    // Sockets destroyed by the test but not yet seen dead still hold slots.
    assert.equal(c.slotCount, kept.length, `${ctx}: slotCount`);
    assert.equal(st.idle, kept.filter((e) => e.state === 'idle').length, `${ctx}: idle`);
    assert.equal(st.leased, kept.filter((e) => e.state === 'leased').length, `${ctx}: leased`);
    assert.equal(st.displaced, [...held.values()].filter((e) => e.state === 'displaced').length, `${ctx}: displaced`);
    for (const s of offered) {
      assert.ok(
        held.has(s) || deadLent.has(s) || s.destroyed || s._destroyed,
        `${ctx}: an offered socket is kept or destroyed`,
      );
    }
  }
  return c;
}

test('randomized: 3 pools x 4,000 steps keep every invariant', () => {
  for (const [seed, maxSlots] of [
    [1, 1],
    [7, 4],
    [42, 16],
  ])
    run(seed, maxSlots, 4000);
});

test('randomized: close in the middle of a run leaves nothing behind', () => {
  const c = run(99, 8, 1000);
  const before = c.stats();
  c.close();
  const after = c.stats();
  assert.equal(after.idle, 0);
  assert.equal(after.leased, before.leased);
  assert.equal(c.getConnection(), undefined);
});
