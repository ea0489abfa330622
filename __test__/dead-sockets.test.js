'use strict';

// Sockets that die: a kept socket that ends, errors or closes is dropped and
// frees its slot once; one destroyed before its 'close' event is never lent;
// one that dies while lent is dropped on its quiet return. Then over real
// loopback sockets (issue 12, fault 1): a kept socket whose peer is gone is
// never lent, whatever is buffered on it, and the bytes after the slot line
// still reach the first user. Every way a connection ends: FIN with and
// without unread bytes, late bytes then FIN, reset, the peer's half-close with
// allowHalfOpen on our side, and a destroy by the user. SPEC C5, C6, D2, D6,
// B4, B6, B8.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { once } = require('node:events');
const { socket, client, server, loopback, waitFor, delay, CallosumClient } = require('./helpers.js');

const { Rover } = CallosumClient;

/** A pool given `n` connections to `srv` by a rover, as a client gets them. */
async function poolOf(srv, n) {
  const pool = new CallosumClient({ MAX_SLOTS: 10 });
  const errors = [];
  pool.on('error', (e) => errors.push(e));
  const rover = new Rover({ ROVING_INTERVAL: 60000, servers: { s: srv.address } });
  rover.on('connection', (slot, s) => pool.newConnection(slot, s));
  rover.on('error', (e) => errors.push(e));
  // One connection after the other, each kept before the next starts: the
  // slots are 0, 1, 2 in order, whether or not the rover overlaps attempts.
  for (let i = 1; i <= n; i++) {
    rover.connect();
    await waitFor(() => pool.slotCount === i, { timeout: 3000, what: `${i} kept sockets` });
  }
  return { client: pool, errors };
}

/** Reads from a lent socket until `want` bytes arrived, the way a user would. */
async function readText(s, want, ms = 2000) {
  let text = '';
  s.setEncoding('latin1');
  const done = new Promise((resolve) => {
    s.on('data', (d) => {
      text += d;
      if (text.length >= want) resolve();
    });
  });
  await Promise.race([done, delay(ms)]);
  return text;
}

// A Callosum-like server: each connection gets the next slot, and
// `onConnection(peer, slot)` decides what else it writes and when it ends.
const slotServer = (onConnection) => server(onConnection, { allowHalfOpen: true });

const ends = {
  'FIN (end)': (s) => s.end(),
  'FIN (destroy)': (s) => s.destroy(),
  reset: (s) => s.resetAndDestroy(),
};

test('C5: a socket that died while leased is dropped when returned, quietly', () => {
  const c = client({ MAX_SLOTS: 5 });
  const a = socket();
  c.newConnection(0, a);
  c.getConnection();
  a.emit('close', false);
  assert.equal(c.slotCount, 0);
  c.returnConnection(a);
  assert.deepEqual(c.errors, []);
  assert.equal(c.getConnection(), undefined);
});

for (const event of ['end', 'error', 'close']) {
  test(`C6: a kept socket that emits '${event}' is dropped and frees its slot, once`, () => {
    const c = client({ MAX_SLOTS: 2 });
    const a = socket(),
      b = socket();
    c.newConnection(1, a);
    c.newConnection(2, b);
    a.emit(event, event === 'error' ? new Error('boom') : undefined);
    assert.equal(c.slotCount, 1);
    // The other two events that usually follow change nothing more.
    a.emit('end');
    a.emit('error', new Error('again'));
    a.emit('close', true);
    assert.equal(c.slotCount, 1);
    assert.equal(c.getConnection(), b);
    assert.equal(c.getConnection(), undefined);
    // The freed slot takes a new socket.
    c.newConnection(5, socket());
    assert.equal(c.slotCount, 2);
    assert.deepEqual(c.errors, [], 'socket faults are not pool errors');
  });
}

test("C6: an 'error' on a pooled socket with no other listener does not crash", () => {
  const c = new CallosumClient({ MAX_SLOTS: 1 });
  const a = socket();
  c.newConnection(1, a);
  assert.doesNotThrow(() => a.emit('error', new Error('ECONNRESET')));
  assert.equal(c.slotCount, 0);
});

test('C6: over loopback, peers that close and reset are dropped and their slots freed', async () => {
  const net = await loopback(4);
  try {
    const c = client({ MAX_SLOTS: 4 });
    for (const [i, s] of net.sockets.entries()) c.newConnection(i, s);
    assert.equal(c.slotCount, 4);
    const leased = c.getConnection(); // slot 0
    net.peers[1].end(); // graceful close of idle slot 1
    net.peers[2].resetAndDestroy(); // RST on idle slot 2
    net.peers[0].resetAndDestroy(); // RST on the leased slot 0
    await waitFor(() => c.slotCount === 1, { what: 'three sockets dropped' });
    assert.equal(c.getConnection(), net.sockets[3]);
    assert.equal(c.getConnection(), undefined);
    c.returnConnection(leased); // died while leased: dropped quietly
    assert.equal(c.getConnection(), undefined);
    assert.deepEqual(c.errors, []);
    c.close();
  } finally {
    await net.close();
  }
});

test('D2: a displaced leased socket that errors or closes does not free a slot again', () => {
  const c = client({ MAX_SLOTS: 2 });
  const a = socket(),
    high = socket();
  c.newConnection(1, a);
  c.newConnection(9, high);
  c.getConnection();
  assert.equal(c.getConnection(), high);
  c.newConnection(2, socket()); // displaces leased `high`
  high.emit('error', new Error('reset'));
  high.emit('close', true);
  assert.equal(c.slotCount, 2);
  // The pool must still be full: a higher slot is refused.
  const extra = socket();
  c.newConnection(5, extra);
  assert.equal(extra.destroyed, true);
  assert.equal(c.slotCount, 2);
  c.returnConnection(high); // its one return, after death: quiet
  assert.deepEqual(c.errors, []);
});

test('D6: a socket destroyed before its close event is never lent', () => {
  const c = client({ MAX_SLOTS: 3 });
  const a = socket(),
    b = socket();
  c.newConnection(1, a);
  c.newConnection(2, b);
  a.destroy(); // 'close' comes on a later tick
  assert.equal(c.getConnection(), b);
  assert.equal(c.getConnection(), undefined);
  assert.equal(c.slotCount, 1, 'its slot freed at once');
});

test('B4: an already destroyed socket is not kept and takes no slot', () => {
  const c = client({ MAX_SLOTS: 1 });
  const dead = socket();
  dead.destroy();
  c.newConnection(0, dead);
  assert.equal(c.slotCount, 0);
  assert.equal(c.getConnection(), undefined);
  const live = socket();
  c.newConnection(5, live);
  assert.equal(c.getConnection(), live);
});

test('B6: a displaced socket still leased keeps an error listener until returned', () => {
  const c = client({ MAX_SLOTS: 1 });
  const high = socket();
  c.newConnection(9, high);
  c.getConnection();
  c.newConnection(1, socket());
  assert.ok(high.listenerCount('error') >= 1);
  assert.doesNotThrow(() => high.emit('error', new Error('late fault')));
  assert.equal(c.slotCount, 1);
  c.returnConnection(high);
  assert.deepEqual(c.errors, []);
});

test('B8: a leased socket that got end (half open) is destroyed when returned', async () => {
  const srv = await server((peer) => peer.end(), { allowHalfOpen: true });
  const s = net.connect({ ...srv.address, allowHalfOpen: true });
  await once(s, 'connect');
  try {
    const c = client({ MAX_SLOTS: 1 });
    c.newConnection(0, s);
    assert.equal(c.getConnection(), s);
    s.resume();
    await once(s, 'end');
    assert.equal(c.slotCount, 0, 'its slot freed on end');
    assert.equal(s.destroyed, false, 'not destroyed under its user');
    c.returnConnection(s);
    assert.equal(s.destroyed, true, 'the pool closes what it owned');
    assert.deepEqual(c.errors, []);
  } finally {
    s.destroy();
    await srv.close();
  }
});

for (const [how, finish] of Object.entries(ends)) {
  for (const extra of ['', '#hi\n']) {
    test(`${how} ${extra ? 'with unread bytes after the slot line' : 'with nothing unread'}: dropped at once, the slot freed on both sides`, async () => {
      const srv = await slotServer((s, slot) => {
        s.write(`${slot}\r\n${extra}`);
        setTimeout(() => finish(s), 200);
      });
      const { client, errors } = await poolOf(srv, 3);
      try {
        // The report: 600 ms later all three were still kept.
        await waitFor(() => client.slotCount === 0, { timeout: 2000, what: 'the dead sockets to be dropped' });
        assert.equal(client.getConnection(), undefined, 'a dead socket was lent');
        await waitFor(() => srv.peers.every((s) => s.gone), {
          timeout: 2000,
          what: 'the server to see every connection closed',
        });
        assert.deepEqual(client.stats().idle, 0);
        assert.equal(client.counters().droppedIdle, 3);
        assert.deepEqual(errors, []);
      } finally {
        client.close();
        await srv.close();
      }
    });
  }
}

test('the bytes after the slot line reach the first user intact, with later bytes after them', async () => {
  const srv = await slotServer((s, slot) => {
    s.write(`${slot}\r\n#hi\n`);
    setTimeout(() => s.write('#late\n'), 100);
  });
  const { client } = await poolOf(srv, 1);
  try {
    await delay(200); // the late bytes arrive while the socket is idle
    const socket = client.getConnection();
    assert.ok(socket);
    assert.equal(await readText(socket, 10), '#hi\n#late\n');
    client.returnConnection(socket);
  } finally {
    client.close();
    await srv.close();
  }
});

for (const finish of ['end', 'destroy']) {
  test(`bytes that arrive while idle, then a FIN (${finish}): dropped without a lease, never lent`, async () => {
    const srv = await slotServer((s, slot) => {
      s.write(`${slot}\r\n`);
      setTimeout(() => s.write('#late\n'), 60);
      setTimeout(() => s[finish](), 120);
    });
    const { client } = await poolOf(srv, 2);
    try {
      // Nobody asks for a socket: the pool's own look at its idle sockets
      // (a few times a second) finds them and frees the slots on both sides.
      await waitFor(() => client.slotCount === 0, { timeout: 3000, what: 'the dead sockets to be dropped' });
      await waitFor(() => srv.peers.every((s) => s.gone), {
        timeout: 3000,
        what: 'the server to see every connection closed',
      });
      assert.equal(client.getConnection(), undefined, 'a socket whose peer ended was lent');
    } finally {
      client.close();
      await srv.close();
    }
  });
}

test('late bytes on an idle socket whose peer stays: given to the first user after the earlier ones', async () => {
  const srv = await slotServer((s, slot) => {
    s.write(`${slot}\r\n#1\n`);
    setTimeout(() => s.write('#2\n'), 40);
    setTimeout(() => s.write('#3\n'), 600); // after a sweep took #2 out
  });
  const { client } = await poolOf(srv, 1);
  try {
    await delay(800);
    const socket = client.getConnection();
    assert.equal(await readText(socket, 9), '#1\n#2\n#3\n');
  } finally {
    client.close();
    await srv.close();
  }
});

test('a socket its user end()ed before giving it back is not lent again (it cannot carry a request)', async () => {
  const srv = await slotServer((s, slot) => s.write(`${slot}\r\n`));
  const { client, errors } = await poolOf(srv, 1);
  try {
    const a = client.getConnection();
    a.end();
    client.returnConnection(a);
    assert.equal(client.getConnection(), undefined);
    assert.equal(client.slotCount, 0);
    assert.equal(a.destroyed, true, 'the pool closed what it owned');
    assert.deepEqual(errors, []);
  } finally {
    client.close();
    await srv.close();
  }
});

test('a returned socket with a reply left unread, then a FIN: dropped while idle', async () => {
  const srv = await slotServer((s, slot) => {
    s.write(`${slot}\r\n`);
    s.on('data', () => {
      s.write('reply\n');
      setTimeout(() => s.end(), 50);
    });
  });
  const { client } = await poolOf(srv, 1);
  try {
    const socket = client.getConnection();
    socket.write('request\n');
    await delay(30);
    client.returnConnection(socket); // the reply is not read
    await waitFor(() => client.slotCount === 0, { timeout: 2000, what: 'the socket to be dropped' });
    assert.equal(client.getConnection(), undefined);
  } finally {
    client.close();
    await srv.close();
  }
});

test("the peer's half-close on a socket made with allowHalfOpen: dropped and closed", async () => {
  for (const extra of ['', '#hi\n']) {
    const srv = await slotServer((s, slot) => {
      s.write(`${slot}\r\n${extra}`);
      setTimeout(() => s.end(), 100);
    });
    const client = new CallosumClient();
    try {
      // A user's own connection, read as the rover reads it.
      const socket = net.connect({ ...srv.address, allowHalfOpen: true });
      await once(socket, 'readable');
      const line = socket.read();
      const text = line.toString('latin1');
      const at = text.indexOf('\r\n');
      if (at + 2 < line.length) socket.unshift(line.subarray(at + 2));
      client.newConnection(Number(text.slice(0, at)), socket);
      assert.equal(client.slotCount, 1);
      await waitFor(() => client.slotCount === 0, { timeout: 2000, what: 'the half-closed socket to be dropped' });
      await waitFor(() => srv.peers.every((s) => s.gone), {
        timeout: 2000,
        what: 'the server to see it closed (our FIN too)',
      });
      assert.equal(socket.destroyed, true);
    } finally {
      client.close();
      await srv.close();
    }
  }
});

test('a socket destroyed by its user while idle is never lent', async () => {
  const srv = await slotServer((s, slot) => s.write(`${slot}\r\n#hi\n`));
  const { client } = await poolOf(srv, 2);
  try {
    const a = client.getConnection();
    client.returnConnection(a);
    a.destroy(); // a user keeps a reference after returning it
    const b = client.getConnection();
    assert.notEqual(b, a);
    assert.equal(b.destroyed, false);
    assert.equal(client.getConnection(), undefined);
    assert.equal(client.slotCount, 1);
  } finally {
    client.close();
    await srv.close();
  }
});
