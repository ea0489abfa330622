'use strict';

// client.rove(servers, options): a rover wired to a pool. Real sockets on
// 127.0.0.1; every wait bounded by a deadline that fails the test.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');

const CallosumClient = require('..');
const { Rover } = CallosumClient;
const { CallosumServer } = require('./fixtures/callosum-server.js');
const { waitFor, delay } = require('./helpers.js');

test('require(...).Rover is lib/rover/', () => {
  assert.equal(Rover, require('../lib/rover/index.js'));
});

test('rove fills the pool with the lowest slots; close() stops the rover and frees every socket', async (t) => {
  const server = new CallosumServer();
  await server.listen();
  t.after(() => server.close());
  const client = new CallosumClient({ MAX_SLOTS: 4 });
  const errors = [];
  client.on('error', (e) => errors.push(e));
  const rover = client.rove({ s: server.address }, { ROVING_INTERVAL: 20 });
  t.after(() => client.close());
  assert.ok(rover instanceof Rover);
  assert.equal(rover.running, true);
  await waitFor(() => client.slotCount === 4, { timeout: 5000, what: 'a full pool' });
  // Later connections get slot 4 (the lowest free), refused: the pool keeps 0-3.
  await waitFor(() => server.accepted >= 8, { timeout: 5000, what: 'more attempts' });
  const leased = [];
  for (let s = client.getConnection(); s !== undefined; s = client.getConnection()) leased.push(s);
  assert.deepEqual(
    leased.map((s) => s._slot),
    [0, 1, 2, 3],
  );
  for (const s of leased) client.returnConnection(s);

  client.close();
  assert.equal(rover.running, false);
  await waitFor(() => server.connections === 0, { timeout: 3000, what: 'every socket closed' });
  const accepted = server.accepted;
  await delay(100); // five intervals
  assert.equal(server.accepted, accepted, 'the rover still connects after close()');
  assert.deepEqual(errors, []);
});

test("the rover's errors become the client's 'error' events; unreachable is forwarded", async (t) => {
  const bad = net.createServer((s) => s.end('nope\r\n'));
  await new Promise((r) => bad.listen({ host: '127.0.0.1', port: 0 }, r));
  t.after(() => new Promise((r) => bad.close(r)));
  const dead = net.createServer();
  await new Promise((r) => dead.listen({ host: '127.0.0.1', port: 0 }, r));
  const deadPort = dead.address().port;
  await new Promise((r) => dead.close(r));

  const client = new CallosumClient({ MAX_SLOTS: 2 });
  t.after(() => client.close());
  const errors = [];
  const unreachable = [];
  client.on('error', (e) => errors.push(e));
  client.on('unreachable', (id, server) => unreachable.push([id, server]));
  client.rove(
    {
      bad: { host: '127.0.0.1', port: bad.address().port },
      dead: { host: '127.0.0.1', port: deadPort },
    },
    { ROVING_INTERVAL: 20 },
  );
  await waitFor(() => errors.length >= 1 && unreachable.length >= 1, {
    timeout: 5000,
    what: 'an error and an unreachable',
  });
  assert.equal(errors[0].code, 'ERR_CALLOSUM_BAD_SLOT_LINE');
  assert.deepEqual(unreachable[0], ['dead', { host: '127.0.0.1', port: deadPort }]);
  assert.equal(client.slotCount, 0);
});
