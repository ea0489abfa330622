'use strict';

// The rover against the original callosum-client-tcp-rover's documented
// behaviour and its own tests (test/start.js there): its options, `servers`,
// `ROVING_INTERVAL`, `intervalId` (its users stop it with
// clearInterval(rover.intervalId)), start() attempting at once and then every
// ROVING_INTERVAL, and an unreachable server retried whenever it is picked and
// reported every time. Real sockets on 127.0.0.1; timing assertions leave
// wide margins for a loaded machine and only test what tells the behaviours
// apart.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { EventEmitter } = require('node:events');

const CallosumClient = require('..');
const { Rover } = CallosumClient;
const { CallosumServer } = require('./fixtures/callosum-server.js');

const { waitFor, delay, deadPort } = require('./helpers.js');

const HOST = '127.0.0.1';

test('the original options and properties: ROVING_INTERVAL, servers, intervalId', () => {
  const rover = new Rover({ ROVING_INTERVAL: 250, servers: { first: { host: HOST, port: 4040 } } });
  assert.ok(rover instanceof EventEmitter);
  assert.equal(rover.ROVING_INTERVAL, 250);
  assert.equal(new Rover({}).ROVING_INTERVAL, 1000);
  assert.equal(rover.intervalId, null, 'null before start(), as in the original');
  // A plain object of the known servers, the same one each time it is read.
  assert.equal(rover.servers, rover.servers);
  assert.deepEqual(Object.keys(rover.servers), ['first']);
  assert.deepEqual(rover.servers.first, { host: HOST, port: 4040 });
  rover.addServer('second', { host: HOST, port: 4041 });
  assert.deepEqual(Object.keys(rover.servers), ['first', 'second']);
  rover.dropServer('first');
  assert.deepEqual(Object.keys(rover.servers), ['second']);
  assert.equal(rover.backOffUnreachable, false, 'back-off is opt-in');
});

test('start() attempts at once, then every ROVING_INTERVAL, retrying an unreachable server each time (the original test)', async () => {
  // The original's test: ROVING_INTERVAL 100, unreachable 'first' reported
  // "immediately, ~100, ~200". With a back-off the 4th and 5th reports would
  // come 400 and 800 ms after the 3rd; here they come an interval apart.
  const port = await deadPort();
  const rover = new Rover({ ROVING_INTERVAL: 100 });
  rover.addServer('first', { host: HOST, port });
  const seen = [];
  rover.on('unreachable', (id, server) => seen.push({ id, server, at: performance.now() }));
  rover.on('error', (e) => assert.fail(`unexpected error ${e.code}`));
  const started = performance.now();
  rover.start();
  assert.equal(rover.pending, 1, 'the first attempt starts within start()');
  try {
    await waitFor(() => seen.length >= 5, { timeout: 5000, what: 'five unreachable reports' });
  } finally {
    clearInterval(rover.intervalId);
  }
  for (const s of seen) {
    assert.equal(s.id, 'first');
    assert.deepEqual(s.server, { host: HOST, port });
  }
  // The first report comes from the attempt made at once, not after an interval.
  assert.ok(seen[0].at - started < 100 + 400, `first report after ${seen[0].at - started} ms`);
  // Five reports take four intervals (400 ms) plus timer lateness; with the
  // back-off they would take at least 100+200+400+800 = 1500 ms.
  const span = seen[4].at - seen[0].at;
  assert.ok(span < 1400, `five reports spanned ${span.toFixed(0)} ms: backing off?`);
  assert.equal(rover.serverState('first').failures >= 5, true);
  assert.equal(rover.serverState('first').retryAt, 0, 'never skipped');
});

test('every tick picks among all known servers, an unreachable one included, and reports it each time it is picked', async () => {
  const port = await deadPort();
  const live = new CallosumServer();
  await live.listen();
  let r = 0;
  const rover = new Rover({ random: () => r, servers: { dead: { host: HOST, port }, live: live.address } });
  const events = [];
  rover.on('unreachable', (id) => events.push(['unreachable', id]));
  rover.on('connection', (slot, socket) => {
    events.push(['connection', slot]);
    socket.destroy();
  });
  rover.on('error', (e) => events.push(['error', e.code]));
  try {
    for (let i = 0; i < 4; i++) {
      r = 0; // 'dead', the first of two
      const before = events.length;
      assert.equal(rover.connect(), 'dead');
      await waitFor(() => events.length > before, { timeout: 3000, what: 'the attempt to settle' });
      r = 0.99; // 'live'
      const mid = events.length;
      assert.equal(rover.connect(), 'live');
      await waitFor(() => events.length > mid, { timeout: 3000, what: 'the attempt to settle' });
    }
    assert.deepEqual(
      events.map((e) => e[0]),
      [
        'unreachable',
        'connection',
        'unreachable',
        'connection',
        'unreachable',
        'connection',
        'unreachable',
        'connection',
      ],
    );
  } finally {
    rover.stop();
    await live.close();
  }
});

test('clearInterval(rover.intervalId) stops the rover, as it stops the original; start() starts it again', async () => {
  const server = new CallosumServer();
  await server.listen();
  const rover = new Rover({ ROVING_INTERVAL: 30, servers: { first: server.address } });
  rover.on('connection', (_slot, socket) => socket.destroy());
  rover.on('error', () => {});
  try {
    rover.start();
    assert.equal(rover.running, true);
    await waitFor(() => server.accepted >= 3, { timeout: 3000, what: 'three connections' });
    clearInterval(rover.intervalId);
    assert.equal(rover.running, false);
    await delay(60); // an attempt started before the call may still land
    const accepted = server.accepted;
    await delay(300); // ten intervals
    assert.equal(server.accepted, accepted, 'attempts went on after clearInterval(rover.intervalId)');
    rover.start();
    assert.equal(rover.running, true);
    await waitFor(() => server.accepted > accepted, { timeout: 3000, what: 'a connection after start()' });
  } finally {
    rover.stop();
    await server.close();
  }
  assert.equal(rover.intervalId, null);
  assert.equal(rover.running, false);
});

test("started rover emits 'connection' (slot, socket) for a slot line (the original test)", async () => {
  const server = net.createServer((connection) => connection.write('173\r\n'));
  await new Promise((r) => server.listen({ host: HOST, port: 0 }, r));
  const rover = new Rover({ ROVING_INTERVAL: 20000, servers: { first: { host: HOST, port: server.address().port } } });
  try {
    const [slot, socket] = await new Promise((resolve, reject) => {
      rover.on('connection', (...args) => resolve(args));
      rover.on('error', reject);
      rover.start();
    });
    assert.equal(slot, 173);
    assert.ok(socket instanceof net.Socket);
    socket.end();
  } finally {
    clearInterval(rover.intervalId);
    server.close();
  }
});

test("started rover emits 'error' when the server answers with an invalid line (the original test)", async () => {
  const server = net.createServer((connection) => {
    connection.on('error', () => {});
    connection.write('foo\r\n');
  });
  await new Promise((r) => server.listen({ host: HOST, port: 0 }, r));
  const rover = new Rover({ ROVING_INTERVAL: 20000, servers: { first: { host: HOST, port: server.address().port } } });
  try {
    const error = await new Promise((resolve) => {
      rover.on('error', resolve);
      rover.start();
    });
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'ERR_CALLOSUM_BAD_SLOT_LINE');
  } finally {
    clearInterval(rover.intervalId);
    server.close();
  }
});

test('servers written into rover.servers directly are picked, and deleted ones are not (as in the original)', async () => {
  const live = new CallosumServer();
  await live.listen();
  const rover = new Rover({ ROVING_INTERVAL: 20000 });
  const errors = [];
  rover.on('error', (e) => errors.push(e));
  try {
    rover.servers.direct = { host: HOST, port: live.port };
    const got = new Promise((resolve) => rover.once('connection', (_slot, socket) => resolve(socket)));
    assert.equal(rover.connect(), 'direct');
    (await got).destroy();
    delete rover.servers.direct;
    assert.equal(rover.connect(), undefined);
    assert.equal(errors.at(-1).code, 'ERR_CALLOSUM_NO_SERVERS');
    // Not a server: a coded error at the pick, not a throw from the timer.
    rover.servers.bad = { host: HOST, port: 'x' };
    assert.equal(rover.connect(), undefined);
    assert.equal(errors.at(-1).code, 'ERR_INVALID_ARG_VALUE');
  } finally {
    rover.stop();
    await live.close();
  }
});

test('backOffUnreachable: true skips an unreachable server for a while; client.rove() keeps the original cadence unless asked', async () => {
  const port = await deadPort();
  let clock = 0;
  const rover = new Rover({
    ROVING_INTERVAL: 100,
    backOffUnreachable: true,
    now: () => clock,
    servers: { dead: { host: HOST, port } },
  });
  const got = new Promise((resolve) => rover.once('unreachable', resolve));
  assert.equal(rover.connect(), 'dead');
  await got;
  assert.deepEqual(rover.serverState('dead'), { failures: 1, retryAt: 100 });
  assert.equal(rover.connect(), undefined, 'skipped while backing off');
  clock = 100;
  assert.equal(rover.connect(), 'dead');
  rover.stop();

  const client = new CallosumClient();
  client.on('error', () => {});
  const plain = client.rove({ dead: { host: HOST, port } }, { ROVING_INTERVAL: 60000 });
  const backing = client.rove({ dead: { host: HOST, port } }, { ROVING_INTERVAL: 60000, backOffUnreachable: true });
  assert.equal(plain.backOffUnreachable, false);
  assert.equal(backing.backOffUnreachable, true);
  client.close();
  assert.equal(plain.running, false);
});
