'use strict';

// The package's smoke test, run from a project that installed the packed
// tarball (scripts/test-package.js, and under every Node line by
// scripts/test-runtimes.js): require(), then lease/return/displace over
// loopback sockets. Prints one JSON line naming the .node file that loaded.

const assert = require('node:assert');
const net = require('node:net');
const { EventEmitter } = require('node:events');
const CallosumClient = require('callosum-client-tcp');

function nativeFile() {
  return Object.keys(require.cache).filter((f) => f.endsWith('.node'));
}

async function main() {
  assert.strictEqual(typeof CallosumClient, 'function', 'module.exports is the constructor (C1)');
  assert.strictEqual(CallosumClient.CallosumClient, CallosumClient, '.CallosumClient');
  assert.strictEqual(CallosumClient.default, CallosumClient, '.default');

  const peers = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    peers.push(s);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const connect = () =>
    new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
  const [a, b, c, d] = await Promise.all([connect(), connect(), connect(), connect()]);

  const client = new CallosumClient({ MAX_SLOTS: 2 });
  assert.ok(client instanceof EventEmitter, 'an EventEmitter (C2)');
  assert.strictEqual(client.MAX_SLOTS, 2);
  const errors = [];
  client.on('error', (e) => errors.push(e));

  client.newConnection(4, a);
  client.newConnection(1, b);
  assert.strictEqual(client.slotCount, 2);
  assert.strictEqual(client.getConnection(), b, 'lends the lowest slot (C3)');
  assert.strictEqual(client.getConnection(), a);
  assert.strictEqual(client.getConnection(), undefined, 'nothing idle');
  client.returnConnection(b);

  client.newConnection(2, c); // displaces a (slot 4, leased)
  assert.strictEqual(client.slotCount, 2, 'displacing keeps MAX_SLOTS (C4)');
  assert.strictEqual(a.destroyed, false, 'a leased displaced socket lives until returned');
  client.returnConnection(a);
  assert.strictEqual(a.destroyed, true, 'returned displaced socket destroyed (C5)');

  client.newConnection(9, d); // worse than every kept slot: refused
  assert.strictEqual(d.destroyed, true, 'a higher slot offered to a full pool is destroyed (C4)');
  assert.strictEqual(client.slotCount, 2);

  assert.strictEqual(client.getConnection(), b);
  assert.strictEqual(client.getConnection(), c);
  client.returnConnection(c);
  client.returnConnection(b);
  assert.strictEqual(errors.length, 0, `no error events: ${errors.map((e) => e.message).join('; ')}`);

  if (typeof client.close === 'function') {
    client.close();
    assert.strictEqual(client.getConnection(), undefined, 'closed pool lends nothing (E1)');
    assert.strictEqual(b.destroyed && c.destroyed, true, 'close destroys idle sockets (E1)');
  }
  for (const s of [a, b, c, d]) s.destroy();
  for (const s of peers) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  process.stdout.write(`${JSON.stringify({ ok: true, native: nativeFile() })}\n`);
}

main().catch((e) => {
  console.error(e?.stack || e);
  process.exit(1);
});
