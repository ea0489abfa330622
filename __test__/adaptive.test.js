'use strict';

// E6 (issue 20): opt-in adaptive balancing. The pool times a sample of its
// leases per server and ranks connections by slot x that server's weight.
// Off by default, where getConnection lends the lowest slot as the original.
// Over loopback: a fast server and a slow one, and what the pool learns.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { once } = require('node:events');

const { client, server, waitFor, delay } = require('./helpers.js');
const { makeSockets } = require('./fixtures/fake-socket.js');
const { CallosumServer } = require('./fixtures/callosum-server.js');
const CallosumClient = require('..');

/** A server answering each `\n`-terminated request after `ms` (0: at once). */
function answering(ms) {
  return server((peer) => {
    let buffer = '';
    peer.setEncoding('latin1');
    peer.on('data', (text) => {
      buffer += text;
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const reply = () => peer.destroyed || peer.write(`ok ${line}\n`);
        if (ms === 0) reply();
        else setTimeout(reply, ms);
      }
    });
  });
}

async function connect(port) {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  return s;
}

/** One request on a lent socket: write a line, wait for its answer. */
async function request(socket, id) {
  const answered = new Promise((resolve) => {
    let buffer = '';
    const onData = (chunk) => {
      buffer += chunk.toString('latin1');
      if (buffer.includes(`ok ${id}\n`)) {
        socket.removeListener('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
  });
  socket.write(`${id}\n`);
  await answered;
}

/**
 * `rounds` rounds in which every one of the pool's `size` connections is
 * lent, carries a request, and comes back: each is lent once a round, so
 * each server's leases are timed about 1 in 16 (no server can go unsampled
 * by chance: (15/16)^200 is 2.5e-6).
 */
async function rounds(pool, size, count) {
  let id = 0;
  for (let r = 0; r < count; r++) {
    const lent = [];
    for (let i = 0; i < size; i++) lent.push(pool.getConnection());
    assert.ok(lent.every((s) => s !== undefined));
    // Each comes back as soon as its answer does: a lease lasts as long as
    // its server takes.
    await Promise.all(
      lent.map(async (s) => {
        await request(s, id++);
        pool.returnConnection(s);
      }),
    );
  }
}

test('E6: adaptive is off by default, on with adaptive: true; a non-boolean is a coded error', () => {
  assert.equal(new CallosumClient().adaptive, false);
  assert.deepEqual(new CallosumClient().servers(), []);
  assert.equal(new CallosumClient({ adaptive: true }).adaptive, true);
  assert.equal(new CallosumClient({ adaptive: false }).adaptive, false);
  for (const bad of ['yes', 1, null]) {
    assert.throws(() => new CallosumClient({ adaptive: bad }), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
  }
});

test('E6: with no timed lease yet, an adaptive pool lends and displaces in plain slot order', () => {
  const pool = client({ MAX_SLOTS: 3, adaptive: true });
  const [a, b, c, d] = makeSockets(4);
  pool.newConnection(7, a);
  pool.newConnection(3, b);
  pool.newConnection(5, c);
  pool.newConnection(4, d); // displaces 7
  assert.equal(a.destroyed, true);
  assert.equal(pool.getConnection(), b);
  assert.equal(pool.getConnection(), d);
  assert.equal(pool.getConnection(), c);
  assert.equal(pool.getConnection(), undefined);
  assert.deepEqual(pool.errors, []);
});

test("E6: a slow server is judged slow, and its connections are lent after a fast one's lower-ranked ones", async () => {
  const fast = await answering(0);
  const slow = await answering(10);
  const pool = client({ MAX_SLOTS: 4, adaptive: true });
  // Plain order would lend the slow server's first: slots 1 and 3 are its.
  const slowSockets = [await connect(slow.port), await connect(slow.port)];
  const fastSockets = [await connect(fast.port), await connect(fast.port)];
  pool.newConnection(1, slowSockets[0]);
  pool.newConnection(2, fastSockets[0]);
  pool.newConnection(3, slowSockets[1]);
  pool.newConnection(4, fastSockets[1]);
  await rounds(pool, 4, 100);
  const servers = pool.servers();
  const byKey = new Map(servers.map((s) => [s.server, s]));
  const f = byKey.get(`127.0.0.1:${fast.port}`);
  const s = byKey.get(`127.0.0.1:${slow.port}`);
  assert.ok(f !== undefined && s !== undefined, JSON.stringify(servers));
  assert.equal(f.held, 2);
  assert.equal(s.held, 2);
  assert.ok(f.leases >= 200 && s.leases >= 200, JSON.stringify(servers));
  assert.ok(s.estimateMs >= 9, `slow estimate ${s.estimateMs} ms`);
  assert.ok(f.estimateMs < s.estimateMs / 4, `fast ${f.estimateMs} ms, slow ${s.estimateMs} ms`);
  assert.ok(s.weight > 1 && s.weight > f.weight, JSON.stringify(servers));
  // Now the fast server's slots 2 and 4 rank before the slow one's 1 and 3.
  const order = [pool.getConnection(), pool.getConnection(), pool.getConnection(), pool.getConnection()];
  assert.deepEqual(
    order.map((x) => x._slot),
    [2, 4, 1, 3],
  );
  for (const x of order) pool.returnConnection(x);
  assert.deepEqual(pool.errors, []);
  await pool.close();
  await fast.close();
  await slow.close();
});

test('E6: the same fleet in a plain pool keeps the plain order (the mode is opt-in)', async () => {
  const fast = await answering(0);
  const slow = await answering(10);
  const pool = client({ MAX_SLOTS: 4 });
  pool.newConnection(1, await connect(slow.port));
  pool.newConnection(2, await connect(fast.port));
  pool.newConnection(3, await connect(slow.port));
  pool.newConnection(4, await connect(fast.port));
  await rounds(pool, 4, 20);
  const order = [pool.getConnection(), pool.getConnection(), pool.getConnection(), pool.getConnection()];
  assert.deepEqual(
    order.map((x) => x._slot),
    [1, 2, 3, 4],
  );
  assert.deepEqual(pool.servers(), []);
  await pool.close({ timeout: 10 }).catch(() => {});
  await fast.close();
  await slow.close();
});

test("E6: connections from rove() are known by the rover's server ids", async (t) => {
  const fast = new CallosumServer({ delay: 0 });
  const slow = new CallosumServer({ delay: 10 });
  const pool = client({ MAX_SLOTS: 6, adaptive: true });
  t.after(async () => {
    await pool.close({ timeout: 1000 }).catch(() => {});
    await fast.close();
    await slow.close();
  });
  const rover = pool.rove({ fast: await fast.listen(), slow: await slow.listen() }, { ROVING_INTERVAL: 10, probes: 2 });
  await waitFor(() => pool.slotCount === 6, { what: 'a full pool', timeout: 3000 });
  rover.stop();
  await rounds(pool, 6, 200);
  const servers = pool.servers();
  assert.deepEqual(servers.map((x) => x.server).sort(), ['fast', 'slow']);
  const s = servers.find((x) => x.server === 'slow');
  const f = servers.find((x) => x.server === 'fast');
  assert.equal(s.held + f.held, 6);
  assert.ok(s.estimateMs > f.estimateMs, JSON.stringify(servers));
  assert.deepEqual(pool.errors, []);
});

test('E6: a thousand returns queued without a crossing, timed ones among them, are all applied', () => {
  // The return queue holds QUEUE_CAP words and a timed return takes two:
  // an adaptive pool flushes early enough that a pair always fits.
  const n = 3000;
  const pool = client({ MAX_SLOTS: n, adaptive: true });
  const sockets = makeSockets(n);
  for (let i = 0; i < n; i++) pool.newConnection(i, sockets[i]);
  for (let round = 0; round < 3; round++) {
    const lent = [];
    for (let i = 0; i < n; i++) lent.push(pool.getConnection());
    assert.equal(new Set(lent).size, n);
    assert.equal(pool.getConnection(), undefined);
    for (const s of lent) pool.returnConnection(s);
    const stats = pool.stats();
    assert.equal(stats.idle, n);
    assert.equal(stats.leased, 0);
  }
  const [only] = pool.servers();
  assert.equal(only.held, n);
  assert.equal(only.leases, 3 * n);
  assert.notEqual(only.estimateMs, null); // some leases were timed
  assert.deepEqual(pool.errors, []);
});

test('E6: timed leases that end in a hand-off to a waiter leave the socket lent to the waiter', async () => {
  const pool = client({ MAX_SLOTS: 2, adaptive: true });
  const sockets = makeSockets(2);
  pool.newConnection(0, sockets[0]);
  pool.newConnection(1, sockets[1]);
  // 64 hand-offs: waiters queue behind two lent sockets, each return goes
  // straight to the oldest (some of those leases were timed).
  let a = await pool.acquire();
  let b = await pool.acquire();
  for (let i = 0; i < 32; i++) {
    const nextA = pool.acquire();
    const nextB = pool.acquire();
    await delay(1);
    pool.returnConnection(a);
    pool.returnConnection(b);
    [a, b] = [await nextA, await nextB];
    assert.notEqual(a, b);
  }
  assert.equal(pool.stats().leased, 2);
  assert.equal(pool.getConnection(), undefined); // both still lent
  pool.returnConnection(a);
  pool.returnConnection(b);
  assert.equal(pool.stats().idle, 2);
  assert.equal(pool.servers()[0].leases >= 2, true);
  assert.deepEqual(pool.errors, []);
});

test('E6: the server map is bounded: addresses that come and go do not grow it', () => {
  const pool = client({ MAX_SLOTS: 2, adaptive: true });
  // Sockets claiming 1,000 distinct peers, each kept then displaced.
  for (let i = 0; i < 1000; i++) {
    const [s] = makeSockets(1);
    s.remoteAddress = '10.0.0.1';
    s.remotePort = 1000 + i;
    pool.newConnection(1000 - i, s);
  }
  assert.equal(pool.slotCount, 2);
  // At most 2 x MAX_SLOTS + 64 keys are remembered by JavaScript, and Rust's table is bounded alike.
  assert.ok(pool.servers().length <= 2 * 2 + 64, `${pool.servers().length} servers`);
  assert.deepEqual(pool.errors, []);
});

test("E6: newConnection's third argument names the server; a rover wired by hand passes it", async (t) => {
  const a = new CallosumServer({ delay: 0 });
  const b = new CallosumServer({ delay: 0 });
  const pool = client({ MAX_SLOTS: 4, adaptive: true });
  const rover = new CallosumClient.Rover({
    ROVING_INTERVAL: 10,
    probes: 2,
    servers: { a: await a.listen(), b: await b.listen() },
  });
  t.after(async () => {
    rover.stop();
    await pool.close({ timeout: 1000 }).catch(() => {});
    await a.close();
    await b.close();
  });
  rover.on('connection', pool.newConnection.bind(pool));
  rover.on('error', () => {});
  rover.start();
  await waitFor(() => pool.slotCount === 4, { what: 'a full pool', timeout: 3000 });
  rover.stop();
  assert.deepEqual(
    pool
      .servers()
      .map((x) => x.server)
      .sort(),
    ['a', 'b'],
  );
  // A value that is not a string is no name: the address is used instead.
  const [s] = makeSockets(1);
  s.remoteAddress = '10.1.1.1';
  s.remotePort = 7;
  const other = client({ MAX_SLOTS: 1, adaptive: true });
  other.newConnection(0, s, 42);
  assert.deepEqual(
    other.servers().map((x) => x.server),
    ['10.1.1.1:7'],
  );
  assert.deepEqual(pool.errors, []);
});
