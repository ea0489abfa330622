'use strict';

// Shared test fixtures: real sockets, a loopback server, error capture.

const net = require('node:net');
const { once } = require('node:events');
const CallosumClient = require('..');

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

// A loopback server and `count` client sockets connected to it. Returns the
// client sockets, the server-side peers (same order) and a close function.
async function loopback(count) {
  const peers = [];
  const server = net.createServer((peer) => {
    peer.on('error', () => {});
    peers.push(peer);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  const sockets = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect(port, '127.0.0.1');
    await once(s, 'connect');
    sockets.push(s);
  }
  while (peers.length < count) await new Promise((r) => setImmediate(r));
  // Pair each client socket with its peer by port.
  const byPort = new Map(peers.map((p) => [p.remotePort, p]));
  const ordered = sockets.map((s) => byPort.get(s.localPort));
  return {
    sockets,
    peers: ordered,
    async close() {
      for (const s of sockets) s.destroy();
      for (const p of peers) p.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// Waits until `predicate()` holds, polling on the event loop (bounded).
async function until(predicate, what, ms = 2000) {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// A loopback port with nothing listening on it (connections are refused).
async function deadPort() {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
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

module.exports = { socket, client, loopback, until, delay, deadPort, rng, CallosumClient };
