'use strict';

// Issue 18 (SPEC B9): a server that streams bytes to an idle connection must
// not grow the client's memory. The pool holds at most maxHeldBytes of unread
// bytes for one idle socket; past it the socket is dropped as 'flooded'. The
// flooding server runs in a process of its own, so the client's
// `arrayBuffers` measure the client alone.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const dc = require('node:diagnostics_channel');
const { fork } = require('node:child_process');
const { once } = require('node:events');
const v8 = require('node:v8');
const vm = require('node:vm');

const { client, loopback, waitFor, delay } = require('./helpers.js');

// npm test passes --expose-gc; this also works when the file runs alone.
v8.setFlagsFromString('--expose-gc');
const gc = globalThis.gc ?? vm.runInNewContext('gc');

/** The flooding server in a child process: { port, stats(), close() }. */
async function floodServer(mode, options = {}) {
  const child = fork(path.join(__dirname, 'fixtures', 'flood-server.js'), [mode, JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [{ port }] = await once(child, 'message');
  return {
    port,
    async stats() {
      child.send('stats');
      const [msg] = await once(child, 'message');
      return msg;
    },
    async close() {
      child.kill();
      await once(child, 'exit');
    },
  };
}

/**
 * Collects what the dropped and refused channels publish for `pool`. With
 * `light`, only counts and a WeakSet of the sockets dropped as flooded: a
 * message keeps its socket, and a socket its buffered bytes, alive.
 */
function watchChannels(pool, light = false) {
  const seen = { dropped: [], refused: [], flooded: new WeakSet(), floodedCount: 0, floodedLeased: 0 };
  const onDropped = (m) => {
    if (m.client !== pool) return;
    if (m.reason === 'flooded') {
      seen.flooded.add(m.socket);
      seen.floodedCount++;
      if (m.leased !== false) seen.floodedLeased++;
      // Published just before the pool destroys it.
      const { socket } = m;
      queueMicrotask(() => {
        if (socket.destroyed !== true) seen.floodedLeased++;
      });
    }
    if (!light) seen.dropped.push(m);
  };
  const onRefused = (m) => m.client === pool && !light && seen.refused.push(m);
  dc.subscribe('callosum:pool:dropped', onDropped);
  dc.subscribe('callosum:pool:refused', onRefused);
  seen.stop = () => {
    dc.unsubscribe('callosum:pool:dropped', onDropped);
    dc.unsubscribe('callosum:pool:refused', onRefused);
  };
  return seen;
}

test('B9: a server flooding idle connections never takes the client past the stated memory bound', async () => {
  const server = await floodServer('flood');
  const MAX_SLOTS = 4;
  const maxHeldBytes = 16 * 1024;
  const pool = client({ MAX_SLOTS, maxHeldBytes });
  const seen = watchChannels(pool, true);
  gc();
  const baseline = process.memoryUsage().arrayBuffers;
  // README's bound: per kept socket, what the pool holds plus what the
  // socket's own stream buffers before backpressure (its highWaterMark and
  // one read of at most 64 KiB). A probe socket tells this runtime's mark.
  const hwm = new net.Socket().readableHighWaterMark;
  const bound = MAX_SLOTS * (maxHeldBytes + hwm + 64 * 1024);
  // The rover's sockets in their handshake and the child's IPC add a little;
  // what a leak looks like is megabytes (7 MB in 12 s from one connection).
  const margin = 256 * 1024;
  let peak = 0;
  let peakHeld = 0;
  const rover = pool.rove({ flood: { host: '127.0.0.1', port: server.port } }, { ROVING_INTERVAL: 50 });
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    await delay(50);
    // Lend and give back now and then, as a user would: a flooded socket is
    // never lent, and one that comes back flooded is dropped too.
    const s = pool.getConnection();
    if (s !== undefined) {
      assert.ok(!seen.flooded.has(s), 'a socket dropped as flooded was lent');
      pool.returnConnection(s);
    }
    const { heldBytes, slotCount } = pool.stats();
    assert.ok(heldBytes <= slotCount * maxHeldBytes, `held ${heldBytes} > ${slotCount} x ${maxHeldBytes}`);
    peakHeld = Math.max(peakHeld, heldBytes);
    gc();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline);
    if (peak > bound + margin) break; // failed: no need to watch it grow
  }
  rover.stop();
  const { sent, connections } = await server.stats();
  await pool.close();
  seen.stop();
  await server.close();
  // The server really kept sending: far more than the bound.
  assert.ok(sent > 10 * bound, `the server sent only ${sent} bytes`);
  assert.ok(connections >= 10, `only ${connections} connections`);
  assert.ok(peak <= bound + margin, `arrayBuffers rose by ${peak} bytes, bound ${bound} + ${margin}`);
  assert.ok(seen.floodedCount > 0, 'no socket was dropped as flooded');
  assert.equal(seen.floodedLeased, 0, 'a flooded socket was dropped while lent, or left open');
  assert.equal(pool.counters().droppedFlooded, seen.floodedCount);
  assert.ok(pool.counters().droppedIdle >= seen.floodedCount);
  if (process.env.CALLOSUM_FLOOD_VERBOSE) {
    console.log({ sent, connections, peak, peakHeld, bound, flooded: seen.floodedCount });
  }
});

test('B9: bursts below the bound are held and reach the next user in order', async () => {
  // Three bursts of 1,000 bytes, 300 ms apart: the sweeper holds each.
  const server = await floodServer('burst', { burst: 1000, every: 300, times: 3 });
  const pool = client({ MAX_SLOTS: 2, maxHeldBytes: 4096 });
  const rover = pool.rove({ b: { host: '127.0.0.1', port: server.port } }, { ROVING_INTERVAL: 60000 });
  await waitFor(() => pool.slotCount === 1, { timeout: 3000, what: 'a kept socket' });
  rover.stop();
  await waitFor(() => pool.stats().heldBytes === 3000, { timeout: 3000, what: '3,000 bytes held' });
  const socket = pool.getConnection();
  assert.ok(socket !== undefined);
  assert.equal(pool.stats().heldBytes, 0);
  const chunks = [];
  let got = 0;
  socket.on('data', (d) => {
    chunks.push(d);
    got += d.length;
  });
  await waitFor(() => got === 3000, { timeout: 2000, what: 'the held bytes' });
  assert.equal(Buffer.concat(chunks).toString(), '1'.repeat(1000) + '2'.repeat(1000) + '3'.repeat(1000));
  assert.equal(pool.counters().droppedFlooded, 0);
  socket.destroy();
  await pool.close();
  await server.close();
});

test('B9: an idle socket whose peer sends more than maxHeldBytes is dropped, its slot freed on both sides', async () => {
  const { sockets, peers, close } = await loopback(2);
  const pool = client({ MAX_SLOTS: 2, maxHeldBytes: 1024 });
  const seen = watchChannels(pool);
  pool.newConnection(0, sockets[0]);
  pool.newConnection(1, sockets[1]);
  peers[0].write(Buffer.alloc(600, 0x61)); // held: below the bound
  await waitFor(() => pool.stats().heldBytes === 600, { timeout: 2000, what: '600 bytes held' });
  peers[0].write(Buffer.alloc(600, 0x62)); // 1,200 in all: past it
  const peerClosed = once(peers[0], 'close');
  await waitFor(() => pool.slotCount === 1, { timeout: 2000, what: 'the flooded socket dropped' });
  await peerClosed;
  assert.equal(sockets[0].destroyed, true);
  assert.equal(pool.stats().heldBytes, 0);
  assert.deepEqual(
    seen.dropped.map((m) => [m.slot, m.reason, m.leased]),
    [[0, 'flooded', false]],
  );
  assert.equal(pool.counters().droppedFlooded, 1);
  assert.equal(pool.getConnection(), sockets[1]); // the other one is unaffected
  seen.stop();
  await close();
});

test('B9: a socket returned with more unread bytes than maxHeldBytes is dropped as flooded', async () => {
  const { sockets, peers, close } = await loopback(1);
  const pool = client({ MAX_SLOTS: 1, maxHeldBytes: 1024 });
  const seen = watchChannels(pool);
  pool.newConnection(3, sockets[0]);
  const s = pool.getConnection();
  peers[0].write(Buffer.alloc(4096, 0x61)); // a reply the user never read
  await waitFor(() => s.readableLength === 4096, { timeout: 2000, what: 'the unread reply' });
  pool.returnConnection(s);
  assert.equal(s.destroyed, true);
  assert.equal(pool.slotCount, 0);
  assert.equal(pool.getConnection(), undefined);
  assert.deepEqual(
    seen.dropped.map((m) => [m.slot, m.reason, m.leased]),
    [[3, 'flooded', false]],
  );
  assert.deepEqual(pool.counters().returns, 1);
  assert.deepEqual(pool.errors, []);
  seen.stop();
  await close();
});

test('B9: an offered socket with more unread bytes than maxHeldBytes is refused, displacing nobody', async () => {
  const { sockets, peers, close } = await loopback(2);
  const pool = client({ MAX_SLOTS: 1, maxHeldBytes: 100 });
  const seen = watchChannels(pool);
  pool.newConnection(5, sockets[0]);
  peers[1].write(Buffer.alloc(200, 0x61));
  await waitFor(() => sockets[1].readableLength === 200, { timeout: 2000, what: 'unread bytes on the new socket' });
  pool.newConnection(1, sockets[1]); // a lower slot would displace slot 5
  assert.equal(sockets[1].destroyed, true);
  assert.equal(sockets[0].destroyed, false);
  assert.equal(pool.stats().lowestSlot, 5);
  assert.deepEqual(
    seen.refused.map((m) => [m.slot, m.reason]),
    [[1, 'flooded']],
  );
  assert.equal(pool.counters().offersRefused, 1);
  seen.stop();
  await close();
});

test('B9: maxHeldBytes 0 keeps no byte; bad values throw coded errors', async () => {
  const { sockets, peers, close } = await loopback(1);
  const pool = client({ MAX_SLOTS: 1, maxHeldBytes: 0 });
  assert.equal(pool.stats().maxHeldBytes, 0);
  pool.newConnection(0, sockets[0]);
  peers[0].write('x');
  await waitFor(() => pool.slotCount === 0, { timeout: 2000, what: 'dropped at the first byte' });
  assert.equal(pool.counters().droppedFlooded, 1);
  await close();
  const CallosumClient = require('..');
  assert.equal(new CallosumClient().stats().maxHeldBytes, 65536);
  for (const [bad, code] of [
    [-1, 'ERR_OUT_OF_RANGE'],
    [1.5, 'ERR_OUT_OF_RANGE'],
    [Infinity, 'ERR_OUT_OF_RANGE'],
    ['64', 'ERR_INVALID_ARG_TYPE'],
    [null, 'ERR_INVALID_ARG_TYPE'],
  ]) {
    assert.throws(() => new CallosumClient({ maxHeldBytes: bad }), { code }, String(bad));
  }
});

test('B9: a subscriber to the dropped channel sees heldBytes and slotCount agree (the bytes go with the slot)', async () => {
  const { sockets, peers, close } = await loopback(1);
  const pool = client({ MAX_SLOTS: 1, maxHeldBytes: 1024 });
  const seen = [];
  const onDropped = (m) => {
    if (m.client !== pool) return;
    const { heldBytes, slotCount } = pool.stats();
    seen.push({ reason: m.reason, heldBytes, slotCount });
  };
  dc.subscribe('callosum:pool:dropped', onDropped);
  pool.newConnection(0, sockets[0]);
  peers[0].write('late bytes');
  await waitFor(() => pool.stats().heldBytes === 10, { what: '10 bytes held' });
  peers[0].end(); // the FIN behind them: dropped on 'end'
  await waitFor(() => seen.length === 1, { what: 'the drop' });
  dc.unsubscribe('callosum:pool:dropped', onDropped);
  assert.deepEqual(seen, [{ reason: 'end', heldBytes: 0, slotCount: 0 }]);
  await close();
});
