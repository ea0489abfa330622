'use strict';

// Issue 12, fault 1: a kept socket whose peer is gone is never lent, whatever
// is buffered on it, and the bytes after the slot line still reach the first
// user. Every way a connection ends, over real loopback sockets: FIN with and
// without unread bytes, late bytes then FIN, reset, the peer's half-close
// with allowHalfOpen on our side, and a destroy by the user.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { once } = require('node:events');

const CallosumClient = require('..');
const { Rover } = CallosumClient;

const { until, delay } = require('./helpers.js');

const HOST = '127.0.0.1';

/**
 * A Callosum-like server on loopback: each connection gets the next slot and
 * `onConnection(socket, slot)` decides what else it writes and when it ends.
 * Records each server-side socket and when it closed.
 */
async function server(onConnection) {
  const sockets = [];
  let next = 0;
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.gone = false;
    s.on('close', () => { s.gone = true; });
    sockets.push(s);
    onConnection(s, next++);
  });
  await new Promise((r) => srv.listen({ host: HOST, port: 0 }, r));
  return {
    sockets,
    address: { host: HOST, port: srv.address().port },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

/** A pool given `n` connections to `srv` by a rover, as a client gets them. */
async function poolOf(srv, n) {
  const client = new CallosumClient({ MAX_SLOTS: 10 });
  const errors = [];
  client.on('error', (e) => errors.push(e));
  const rover = new Rover({ ROVING_INTERVAL: 60000, servers: { s: srv.address } });
  rover.on('connection', (slot, socket) => client.newConnection(slot, socket));
  rover.on('error', (e) => errors.push(e));
  for (let i = 0; i < n; i++) rover.connect();
  await until(() => client.slotCount === n, `${n} kept sockets`, 3000);
  return { client, errors };
}

/** Reads from a lent socket until `want` bytes arrived, the way a user would. */
async function readText(socket, want, ms = 2000) {
  let text = '';
  socket.setEncoding('latin1');
  const done = new Promise((resolve) => {
    socket.on('data', (d) => {
      text += d;
      if (text.length >= want) resolve();
    });
  });
  await Promise.race([done, delay(ms)]);
  return text;
}

const ends = {
  'FIN (end)': (s) => s.end(),
  'FIN (destroy)': (s) => s.destroy(),
  'reset': (s) => s.resetAndDestroy(),
};

for (const [how, finish] of Object.entries(ends)) {
  for (const extra of ['', '#hi\n']) {
    test(`${how} ${extra ? 'with unread bytes after the slot line' : 'with nothing unread'}: dropped at once, the slot freed on both sides`, async () => {
      const srv = await server((s, slot) => {
        s.write(`${slot}\r\n${extra}`);
        setTimeout(() => finish(s), 200);
      });
      const { client, errors } = await poolOf(srv, 3);
      try {
        // The report: 600 ms later all three were still kept.
        await until(() => client.slotCount === 0, 'the dead sockets to be dropped', 2000);
        assert.equal(client.getConnection(), undefined, 'a dead socket was lent');
        await until(() => srv.sockets.every((s) => s.gone), 'the server to see every connection closed', 2000);
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
  const srv = await server((s, slot) => {
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
    const srv = await server((s, slot) => {
      s.write(`${slot}\r\n`);
      setTimeout(() => s.write('#late\n'), 60);
      setTimeout(() => s[finish](), 120);
    });
    const { client } = await poolOf(srv, 2);
    try {
      // Nobody asks for a socket: the pool's own look at its idle sockets
      // (a few times a second) finds them and frees the slots on both sides.
      await until(() => client.slotCount === 0, 'the dead sockets to be dropped', 3000);
      await until(() => srv.sockets.every((s) => s.gone), 'the server to see every connection closed', 3000);
      assert.equal(client.getConnection(), undefined, 'a socket whose peer ended was lent');
    } finally {
      client.close();
      await srv.close();
    }
  });
}

test('late bytes on an idle socket whose peer stays: given to the first user after the earlier ones', async () => {
  const srv = await server((s, slot) => {
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
  const srv = await server((s, slot) => s.write(`${slot}\r\n`));
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
  const srv = await server((s, slot) => {
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
    await until(() => client.slotCount === 0, 'the socket to be dropped', 2000);
    assert.equal(client.getConnection(), undefined);
  } finally {
    client.close();
    await srv.close();
  }
});

test("the peer's half-close on a socket made with allowHalfOpen: dropped and closed", async () => {
  for (const extra of ['', '#hi\n']) {
    const srv = await server((s, slot) => {
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
      await until(() => client.slotCount === 0, 'the half-closed socket to be dropped', 2000);
      await until(() => srv.sockets.every((s) => s.gone), 'the server to see it closed (our FIN too)', 2000);
      assert.equal(socket.destroyed, true);
    } finally {
      client.close();
      await srv.close();
    }
  }
});

test('a socket destroyed by its user while idle is never lent', async () => {
  const srv = await server((s, slot) => s.write(`${slot}\r\n#hi\n`));
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
