'use strict';

// The tests' shared helpers, one of each: real sockets, a client that collects
// its errors, one loopback server, one way to wait for a condition, a seeded
// random source. The fake socket (no I/O) is fixtures/fake-socket.js.

const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { once } = require('node:events');
const CallosumClient = require('..');

const HOST = '127.0.0.1';

// An unconnected but real net.Socket: enough for pool bookkeeping.
function socket() {
  return new net.Socket();
}

// A client whose 'error' events are collected instead of thrown.
function client(options) {
  const c = new CallosumClient(options);
  c.errors = [];
  c.on('error', (err) => c.errors.push(err));
  return c;
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `predicate()` holds, polling every 2 ms on the event loop;
 * rejects after `timeout` ms (default 2000) with an error naming `what`.
 */
async function waitFor(predicate, { timeout = 2000, what = 'a condition' } = {}) {
  const end = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await delay(2);
  }
}

// Awaits `promise` and checks that it rejects with an error of this `code`.
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code);
    return true;
  });
}

/**
 * The one loopback server of the tests: listens on 127.0.0.1 (a free port),
 * calls `onConnection(peer, index)` for each connection (index counts from
 * 0), and records every server-side socket in `peers`, each with `gone` set
 * once it closed. `options` go to net.createServer (e.g. allowHalfOpen).
 * Returns { peers, port, address: { host, port }, close() }; close() destroys
 * every peer and stops listening.
 */
async function server(onConnection = () => {}, options = {}) {
  const peers = [];
  const srv = net.createServer(options, (peer) => {
    peer.on('error', () => {});
    peer.gone = false;
    peer.on('close', () => {
      peer.gone = true;
    });
    peers.push(peer);
    onConnection(peer, peers.length - 1);
  });
  srv.listen(0, HOST);
  await once(srv, 'listening');
  const { port } = srv.address();
  return {
    peers,
    port,
    address: { host: HOST, port },
    async close() {
      for (const p of peers) p.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

/**
 * A loopback server and `count` client sockets connected to it. Returns the
 * client sockets, the server-side peers (same order) and a close function.
 */
async function loopback(count) {
  const srv = await server();
  const sockets = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect(srv.port, HOST);
    await once(s, 'connect');
    sockets.push(s);
  }
  await waitFor(() => srv.peers.length >= count, { what: `${count} accepted connections` });
  // Pair each client socket with its peer by port.
  const byPort = new Map(srv.peers.map((p) => [p.remotePort, p]));
  return {
    sockets,
    peers: sockets.map((s) => byPort.get(s.localPort)),
    async close() {
      for (const s of sockets) s.destroy();
      await srv.close();
    },
  };
}

// A loopback port with nothing listening on it (connections are refused).
async function deadPort() {
  const srv = await server();
  await srv.close();
  return srv.port;
}

// A small seeded generator (xorshift32): rand(n) in [0, n), so a failure
// replays.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/**
 * Runs the tests of `file` (in __test__/) whose titles match `pattern`
 * against the model of the original 0.1.5 (fixtures/model-as-package.js
 * stands in for the package), in a child process; returns its TAP output.
 * @param {string} file
 * @param {string} pattern a --test-name-pattern
 */
function runOnModel(file, pattern) {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // or the child's runner reports to this one instead of printing TAP
  const run = spawnSync(
    process.execPath,
    [
      '--require',
      path.join(__dirname, 'fixtures', 'model-as-package.js'),
      '--test',
      '--test-reporter=tap',
      `--test-name-pattern=${pattern}`,
      path.join(__dirname, file),
    ],
    { encoding: 'utf8', cwd: path.join(__dirname, '..'), env },
  );
  return `${run.stdout}\n${run.stderr}`;
}

module.exports = {
  runOnModel,
  socket,
  client,
  waitFor,
  delay,
  rejectsWith,
  server,
  loopback,
  deadPort,
  rng,
  HOST,
  CallosumClient,
};
