'use strict';

// SPEC E4: acquire() waits for a connection, first come first served, with
// time-outs, abort signals, a bounded queue and close().

const test = require('node:test');
const assert = require('node:assert/strict');
const { setImmediate: tick } = require('node:timers/promises');
const { socket, client, rng } = require('./helpers.js');

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code);
    return true;
  });
}

test('resolves at once with the lowest idle socket', async () => {
  const c = client({ MAX_SLOTS: 3 });
  const a = socket(), b = socket();
  c.newConnection(4, a);
  c.newConnection(2, b);
  assert.equal(await c.acquire(), b);
  assert.equal(b._leased, true);
  assert.equal(await c.acquire({ timeout: 10 }), a);
  assert.equal(c.waiting, 0);
});

test('waiters are served first come, first served, on return and on newConnection', async () => {
  const c = client({ MAX_SLOTS: 3 });
  const a = socket();
  c.newConnection(1, a);
  const first = await c.acquire();
  const order = [];
  const p1 = c.acquire().then((s) => order.push(['w1', s]));
  const p2 = c.acquire().then((s) => order.push(['w2', s]));
  const p3 = c.acquire().then((s) => order.push(['w3', s]));
  assert.equal(c.waiting, 3);
  c.returnConnection(first); // to w1, straight
  assert.equal(c.getConnection(), undefined, 'nothing idles while anyone waits');
  const b = socket(), d = socket();
  c.newConnection(7, b); // to w2
  c.newConnection(5, d); // to w3
  await Promise.all([p1, p2, p3]);
  assert.deepEqual(order, [['w1', a], ['w2', b], ['w3', d]]);
  assert.equal(c.waiting, 0);
  assert.deepEqual([a._leased, b._leased, d._leased], [true, true, true]);
  assert.equal(c.stats().leased, 3);
  for (const s of [a, b, d]) c.returnConnection(s);
  assert.equal(c.stats().idle, 3);
  assert.deepEqual(c.errors, []);
});

test('timeout rejects with ERR_CALLOSUM_ACQUIRE_TIMEOUT and the waiter leaves', async () => {
  const c = client({ MAX_SLOTS: 1 });
  const started = Date.now();
  await rejectsWith(c.acquire({ timeout: 20 }), 'ERR_CALLOSUM_ACQUIRE_TIMEOUT');
  assert.ok(Date.now() - started >= 15);
  assert.equal(c.waiting, 0);
  const s = socket();
  c.newConnection(1, s);
  assert.equal(c.getConnection(), s, 'the socket went to nobody who gave up');
});

test('abort before waiting rejects at once with an AbortError', async () => {
  const c = client({ MAX_SLOTS: 1 });
  c.newConnection(1, socket());
  const ac = new AbortController();
  ac.abort(new Error('cancelled'));
  await assert.rejects(c.acquire({ signal: ac.signal }), (err) => {
    assert.equal(err.name, 'AbortError');
    assert.equal(err.code, 'ABORT_ERR');
    assert.equal(err.cause.message, 'cancelled');
    return true;
  });
  assert.equal(c.stats().idle, 1, 'nothing was lent');
});

test('abort while waiting rejects, and the next socket goes to the next waiter', async () => {
  const c = client({ MAX_SLOTS: 2 });
  const ac = new AbortController();
  const aborted = c.acquire({ signal: ac.signal });
  const next = c.acquire();
  ac.abort();
  await rejectsWith(aborted, 'ABORT_ERR');
  assert.equal(c.waiting, 1);
  const s = socket();
  c.newConnection(3, s);
  assert.equal(await next, s);
  assert.equal(c.waiting, 0);
});

test('a signal that aborts after its waiter was served changes nothing', async () => {
  const c = client({ MAX_SLOTS: 1 });
  const ac = new AbortController();
  const p = c.acquire({ signal: ac.signal, timeout: 1000 });
  const s = socket();
  c.newConnection(1, s);
  assert.equal(await p, s);
  ac.abort();
  await tick();
  assert.equal(c.stats().leased, 1);
  c.returnConnection(s);
  assert.deepEqual(c.errors, []);
});

test('maxWaiting bounds the queue: past it, reject at once with ERR_CALLOSUM_QUEUE_FULL', async () => {
  const c = client({ MAX_SLOTS: 1, maxWaiting: 2 });
  const w1 = c.acquire();
  const w2 = c.acquire();
  await rejectsWith(c.acquire(), 'ERR_CALLOSUM_QUEUE_FULL');
  assert.equal(c.waiting, 2);
  c.close();
  await rejectsWith(w1, 'ERR_CALLOSUM_CLOSED');
  await rejectsWith(w2, 'ERR_CALLOSUM_CLOSED');
  const none = client({ MAX_SLOTS: 1, maxWaiting: 0 });
  await rejectsWith(none.acquire(), 'ERR_CALLOSUM_QUEUE_FULL');
});

test('close() rejects every waiter, and acquire after close rejects', async () => {
  const c = client({ MAX_SLOTS: 1 });
  const waiters = [c.acquire(), c.acquire({ timeout: 5000 }), c.acquire({ signal: new AbortController().signal })];
  c.close();
  for (const w of waiters) await rejectsWith(w, 'ERR_CALLOSUM_CLOSED');
  await rejectsWith(c.acquire(), 'ERR_CALLOSUM_CLOSED');
  assert.equal(c.waiting, 0);
});

test('a leased socket that errors while a waiter is queued is never handed out', async () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket();
  c.newConnection(1, a);
  assert.equal(await c.acquire(), a);
  const waiter = c.acquire();
  a.emit('error', new Error('ECONNRESET'));
  c.returnConnection(a); // its quiet return after death
  await tick();
  assert.equal(c.waiting, 1, 'still waiting');
  const b = socket();
  c.newConnection(2, b);
  assert.equal(await waiter, b);
  assert.deepEqual(c.errors, []);
});

test('a returned socket destroyed meanwhile, or displaced, is not handed to a waiter', async () => {
  const c = client({ MAX_SLOTS: 1 });
  const a = socket();
  c.newConnection(5, a);
  await c.acquire();
  const waiter = c.acquire();
  a.destroy(); // 'close' not yet emitted
  c.returnConnection(a);
  assert.equal(c.waiting, 1);
  const high = socket();
  c.newConnection(9, high); // to the waiter
  assert.equal(await waiter, high);
  const second = c.acquire();
  c.newConnection(3, socket()); // displaces leased `high`; goes to `second`
  const low = await second;
  assert.equal(low._slot, 3);
  const third = c.acquire();
  c.returnConnection(high); // displaced: destroyed, not handed out
  assert.equal(high.destroyed, true);
  assert.equal(c.waiting, 1);
  c.returnConnection(low);
  assert.equal(await third, low);
});

test('bad options reject with coded errors', async () => {
  const c = client({ MAX_SLOTS: 1 });
  await rejectsWith(c.acquire('soon'), 'ERR_INVALID_ARG_TYPE');
  await rejectsWith(c.acquire({ timeout: -1 }), 'ERR_OUT_OF_RANGE');
  await rejectsWith(c.acquire({ timeout: '10' }), 'ERR_INVALID_ARG_TYPE');
  await rejectsWith(c.acquire({ signal: {} }), 'ERR_INVALID_ARG_TYPE');
  assert.equal(c.waiting, 0);
});


test('randomized: acquire/get/return/offer/fault/abort keep hand-off invariants', async () => {
  for (const seed of [3, 11]) {
    const rand = rng(seed);
    const c = client({ MAX_SLOTS: 4 });
    const users = new Set(); // sockets lent and not yet returned
    const pending = new Set(); // { promise, controller, settled, socket }
    const deadLent = new Set();
    const problems = []; // found inside promise callbacks, asserted below
    let closing = false;
    let slotSeq = 0;
    for (let step = 0; step < 2500; step++) {
      const ctx = `seed ${seed} step ${step}`;
      const op = rand(100);
      if (op < 25) {
        const w = { controller: new AbortController(), settled: false, socket: undefined };
        w.promise = c.acquire({ signal: w.controller.signal, timeout: rand(4) === 0 ? 1 : undefined }).then(
          (s) => {
            w.settled = true;
            if (users.has(s)) problems.push(`${ctx}: lent twice`);
            if (w.controller.signal.aborted) problems.push(`${ctx}: resolved after abort`);
            users.add(s);
            w.socket = s;
          },
          (err) => {
            w.settled = true;
            const ok = ['ABORT_ERR', 'ERR_CALLOSUM_ACQUIRE_TIMEOUT'].concat(closing ? ['ERR_CALLOSUM_CLOSED'] : []);
            if (!ok.includes(err.code)) problems.push(`${ctx}: rejected with ${err.code}`);
          });
        pending.add(w);
      } else if (op < 35) {
        const s = c.getConnection();
        if (s !== undefined) {
          assert.ok(!users.has(s), `${ctx}: lent twice`);
          users.add(s);
        }
      } else if (op < 60) {
        const list = [...users];
        if (list.length) {
          const s = list[rand(list.length)];
          users.delete(s);
          c.returnConnection(s);
        }
      } else if (op < 80) {
        c.newConnection(slotSeq++ % 13, socket());
      } else if (op < 88) {
        const list = [...pending].filter((w) => !w.settled);
        if (list.length) list[rand(list.length)].controller.abort();
      } else if (op < 95) {
        // Fault on a lent socket: it dies under its user.
        const list = [...users];
        if (list.length) {
          const s = list[rand(list.length)];
          s.emit('close', true);
          users.delete(s);
          deadLent.add(s);
        }
      } else {
        for (const s of deadLent) c.returnConnection(s);
        deadLent.clear();
      }
      if (rand(3) === 0) await tick(); // let resolutions and timers land
      await Promise.resolve();
      assert.deepEqual(problems, []);
      const st = c.stats();
      if (c.waiting > 0) assert.equal(st.idle, 0, `${ctx}: a socket idles while ${c.waiting} wait`);
      assert.ok(c.slotCount <= 4, ctx);
      // None lost: every kept socket is idle in the pool, with a user, or
      // on its way to a waiter whose promise has not run its callback yet.
      const inFlight = [...pending].filter((w) => !w.settled).length;
      assert.ok(st.leased + st.displaced >= [...users].filter((s) => !s._destroyed).length, `${ctx}: leased count`);
      assert.ok(st.leased + st.displaced <= users.size + inFlight, `${ctx}: a lent socket nobody holds`);
    }
    // Drain: settle every waiter, return everything.
    closing = true;
    c.close();
    await Promise.all([...pending].map((w) => w.promise));
    assert.deepEqual(problems, []);
    for (const s of users) c.returnConnection(s);
    assert.equal(c.slotCount, 0, `seed ${seed}: every slot given back`);
    assert.deepEqual(c.errors, [], `seed ${seed}`);
  }
});

test('a timeout beyond what timers honour is refused, not turned into 1 ms', async () => {
  const c = client({ MAX_SLOTS: 1 });
  await rejectsWith(c.acquire({ timeout: 2 ** 31 }), 'ERR_OUT_OF_RANGE');
  const waiting = c.acquire({ timeout: Infinity });
  await tick();
  assert.equal(c.waiting, 1);
  c.close();
  await rejectsWith(waiting, 'ERR_CALLOSUM_CLOSED');
});

test('a signal without removeEventListener is refused; one that throws cannot break a hand-off', async () => {
  const c = client({ MAX_SLOTS: 1 });
  await rejectsWith(c.acquire({ signal: { aborted: false, addEventListener() {} } }), 'ERR_INVALID_ARG_TYPE');
  const hostile = { aborted: false, addEventListener() {}, removeEventListener() { throw new Error('no'); } };
  const p = c.acquire({ signal: hostile });
  const s = socket();
  assert.doesNotThrow(() => c.newConnection(1, s));
  assert.equal(await p, s);
  assert.equal(c.stats().leased, 1);
});
