'use strict';

// The rover (lib/rover/): slot-line parsing over real sockets, time-outs,
// back-off, server list, stop. Real sockets on 127.0.0.1 only; every wait is
// bounded by a time-out that fails the test instead of hanging it.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { EventEmitter, once } = require('node:events');
const { spawn } = require('node:child_process');
const path = require('node:path');

const Rover = require('../lib/rover/index.js');
const { waitFor, delay, deadPort } = require('./helpers.js');
const { CallosumServer } = require('./fixtures/callosum-server.js');

const HOST = '127.0.0.1';

/** Resolves with the args of `event`, rejects on timeout. */
function nextEvent(emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, on);
      reject(new Error(`timed out after ${ms} ms waiting for '${event}'`));
    }, ms);
    function on(...args) {
      clearTimeout(timer);
      resolve(args);
    }
    emitter.once(event, on);
  });
}

/** `promise`, or a rejection after `ms` (the timer is cleared either way). */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with [event, ...args] of the first of `events` emitted. */
function firstOf(emitter, events, ms = 5000) {
  const listeners = {};
  const p = new Promise((resolve) => {
    for (const ev of events) {
      listeners[ev] = (...args) => resolve([ev, ...args]);
      emitter.once(ev, listeners[ev]);
    }
  });
  return within(p, ms, `one of ${events.join(', ')}`).finally(() => {
    for (const ev of events) emitter.removeListener(ev, listeners[ev]);
  });
}

/**
 * A raw server whose accepted connections are handed to `onSocket`.
 * Records every server-side socket and whether it closed.
 */
async function rawServer(onSocket) {
  const sockets = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.closedPromise = once(s, 'close');
    sockets.push(s);
    server.emit('accepted', s);
    onSocket(s);
  });
  await new Promise((r) => server.listen({ host: HOST, port: 0 }, r));
  const { port } = server.address();
  return {
    server,
    sockets,
    port,
    address: { host: HOST, port },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A rover with one server and listeners recording every event. */
function recordingRover(servers, options = {}) {
  const rover = new Rover({ ROVING_INTERVAL: 60000, servers, ...options });
  const events = [];
  rover.on('connection', (slot, socket) => events.push(['connection', slot, socket]));
  rover.on('unreachable', (id, server) => events.push(['unreachable', id, server]));
  rover.on('error', (error) => events.push(['error', error]));
  return { rover, events };
}

/** One attempt against a raw server that behaves as `onSocket` says; resolves with the first event. */
async function handshakeWith(onSocket, options = {}) {
  const srv = await rawServer(onSocket);
  const { rover, events } = recordingRover({ s: srv.address }, options);
  const first = firstOf(rover, ['connection', 'error', 'unreachable']);
  assert.equal(rover.connect(), 's');
  const result = await first;
  return { srv, rover, events, result };
}

describe('module shape and the original API', () => {
  test('module.exports is the class, with .Rover on it; an EventEmitter', () => {
    assert.equal(typeof Rover, 'function');
    assert.equal(Rover.Rover, Rover);
    const rover = new Rover({ ROVING_INTERVAL: 500, servers: { a: { host: HOST, port: 4040 } } });
    assert.ok(rover instanceof EventEmitter);
    assert.equal(rover.ROVING_INTERVAL, 500);
    assert.deepEqual(rover.servers, { a: { host: HOST, port: 4040 } });
    for (const m of ['addServer', 'dropServer', 'start', 'stop', 'connect'])
      assert.equal(typeof rover[m], 'function', m);
  });

  test('defaults: ROVING_INTERVAL 1000 (falsy means default), time-outs 2000, maxBackoff 30000', () => {
    for (const r of [new Rover(), new Rover({}), new Rover({ ROVING_INTERVAL: 0 })]) {
      assert.equal(r.ROVING_INTERVAL, 1000);
      assert.equal(r.connectTimeout, 2000);
      assert.equal(r.handshakeTimeout, 2000);
      assert.equal(r.maxBackoff, 30000);
      assert.deepEqual(r.servers, {});
    }
  });

  test('the servers option is copied, not kept by reference', () => {
    const servers = { a: { host: HOST, port: 1234 } };
    const rover = new Rover({ servers });
    servers.b = { host: HOST, port: 1 };
    servers.a.port = 9;
    assert.deepEqual(rover.servers, { a: { host: HOST, port: 1234 } });
  });
});

describe('argument validation (setup calls throw, with a code)', () => {
  const bad = [
    [undefined, 'no server'],
    [null, 'null'],
    ['127.0.0.1:80', 'a string'],
    [{ host: HOST }, 'no port'],
    [{ host: HOST, port: 0 }, 'port 0', RangeError, 'ERR_OUT_OF_RANGE'],
    [{ host: HOST, port: 65536 }, 'port too high', RangeError, 'ERR_OUT_OF_RANGE'],
    [{ host: HOST, port: 1.5 }, 'fractional port', RangeError, 'ERR_OUT_OF_RANGE'],
    [{ host: HOST, port: NaN }, 'NaN port', RangeError, 'ERR_OUT_OF_RANGE'],
    [{ host: HOST, port: '80x' }, 'non-numeric port string', TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ host: '', port: 80 }, 'empty host', TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ host: 42, port: 80 }, 'numeric host', TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ host: 'a b', port: 80 }, 'host with a space', TypeError, 'ERR_INVALID_ARG_VALUE'],
  ];
  for (const [server, what, Class = TypeError, code = 'ERR_INVALID_ARG_TYPE'] of bad) {
    test(`addServer rejects ${what}`, () => {
      const rover = new Rover();
      assert.throws(
        () => rover.addServer('x', server),
        (e) => {
          assert.ok(e instanceof Class);
          assert.equal(e.code, code);
          return true;
        },
      );
      assert.deepEqual(rover.servers, {});
    });
  }

  test('addServer accepts a port as a decimal string and a missing host (localhost)', () => {
    const rover = new Rover();
    rover.addServer('a', { host: HOST, port: '4040' });
    rover.addServer('b', { port: 4041 });
    assert.deepEqual(rover.servers, { a: { host: HOST, port: 4040 }, b: { host: 'localhost', port: 4041 } });
  });

  test('bad ids throw a TypeError with a code', () => {
    const rover = new Rover();
    for (const id of [undefined, null, '', {}, NaN, Symbol('x')]) {
      assert.throws(() => rover.addServer(id, { host: HOST, port: 1 }), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
      });
      assert.throws(() => rover.dropServer(id), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    }
  });

  test('the constructor validates options and servers', () => {
    assert.throws(() => new Rover({ servers: { a: { host: HOST, port: -1 } } }), {
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
    });
    assert.throws(() => new Rover({ servers: 'a' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new Rover(5), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new Rover({ ROVING_INTERVAL: '1000' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new Rover({ ROVING_INTERVAL: -5 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new Rover({ ROVING_INTERVAL: Infinity }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new Rover({ connectTimeout: -1 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new Rover({ handshakeTimeout: NaN }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => new Rover({ maxBackoff: 2 ** 40 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new Rover({ random: 0.5 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('slot line parsing over real sockets', () => {
  test('a whole line in one chunk: connection with a Number slot and a clean socket', async () => {
    const { srv, rover, result } = await handshakeWith((s) => s.write('13\r\n'));
    try {
      assert.equal(result[0], 'connection');
      const [, slot, socket] = result;
      assert.equal(slot, 13);
      assert.equal(typeof slot, 'number');
      assert.ok(socket instanceof net.Socket);
      assert.equal(socket.destroyed, false);
      const fresh = new net.Socket(); // Node's own listeners (an internal 'end' one)
      for (const ev of ['data', 'readable', 'error', 'end', 'close', 'connect']) {
        assert.equal(socket.listenerCount(ev), fresh.listenerCount(ev), `rover left a '${ev}' listener`);
      }
      assert.equal(rover.pending, 0);
      socket.destroy();
    } finally {
      await srv.close();
    }
  });

  test('with no connection listener the socket is destroyed, not left open', async () => {
    const srv = await rawServer((s) => s.write('1\r\n'));
    const rover = new Rover({ servers: { s: srv.address } });
    rover.on('error', () => {});
    try {
      rover.connect();
      await waitFor(() => srv.sockets.length === 1, { timeout: 3000, what: 'the connection' });
      await within(srv.sockets[0].closedPromise, 3000, 'socket left open');
      assert.equal(rover.pending, 0);
    } finally {
      await srv.close();
    }
  });

  test('slot 0 and leading zeros', async () => {
    for (const [line, slot] of [
      ['0\r\n', 0],
      ['007\r\n', 7],
      ['00000000000000000042\r\n', 42],
    ]) {
      const { srv, result } = await handshakeWith((s) => s.write(line));
      try {
        assert.equal(result[0], 'connection', `line ${JSON.stringify(line)}: ${result[1]?.message}`);
        assert.equal(result[1], slot);
        result[2].destroy();
      } finally {
        await srv.close();
      }
    }
  });

  test('the largest safe slot is accepted', async () => {
    const { srv, result } = await handshakeWith((s) => s.write(`${Number.MAX_SAFE_INTEGER}\r\n`));
    try {
      assert.equal(result[0], 'connection');
      assert.equal(result[1], Number.MAX_SAFE_INTEGER);
      result[2].destroy();
    } finally {
      await srv.close();
    }
  });

  // Every way of cutting "4096\r\n" into pieces sent separately.
  for (const pieces of [
    ['4', '096\r\n'],
    ['40', '96', '\r', '\n'],
    ['4096\r', '\n'],
    ['4', '0', '9', '6', '\r', '\n'],
  ]) {
    test(`a line split across chunks: ${JSON.stringify(pieces)}`, async () => {
      const { srv, result } = await handshakeWith(async (s) => {
        for (const p of pieces) {
          s.write(p);
          await delay(30); // separate TCP segments (Nagle is off only when asked; small writes with a pause)
        }
      });
      try {
        assert.equal(result[0], 'connection', result[1]?.message);
        assert.equal(result[1], 4096);
        result[2].destroy();
      } finally {
        await srv.close();
      }
    });
  }

  test('bytes after \\r\\n in the same chunk are put back for a listener added at once', async () => {
    const srv = await rawServer((s) => {
      s.setNoDelay(true);
      s.write('5\r\nhello ');
      setTimeout(() => s.end('world'), 50);
    });
    const { rover } = recordingRover({ s: srv.address });
    try {
      const received = new Promise((resolve, reject) => {
        rover.once('connection', (slot, socket) => {
          let text = '';
          socket.setEncoding('utf8');
          socket.on('data', (d) => (text += d));
          socket.on('end', () => resolve([slot, text]));
          socket.on('error', reject);
        });
      });
      rover.connect();
      const [slot, text] = await within(received, 3000, 'the data and end');
      assert.equal(slot, 5);
      assert.equal(text, 'hello world');
    } finally {
      await srv.close();
    }
  });

  test('bytes after the line are kept for a listener added later (the socket is not left flowing)', async () => {
    const srv = await rawServer((s) => s.end('6\r\nearly bytes'));
    const { rover } = recordingRover({ s: srv.address });
    try {
      const got = nextEvent(rover, 'connection');
      rover.connect();
      const [slot, socket] = await got;
      assert.equal(slot, 6);
      await delay(100); // the data and the FIN have arrived by now
      assert.notEqual(socket.readableFlowing, false, 'socket handed over explicitly paused');
      let text = '';
      const ended = nextEvent(socket, 'end');
      socket.on('data', (d) => (text += d));
      await ended;
      assert.equal(text, 'early bytes');
    } finally {
      await srv.close();
    }
  });

  test('"\\r" at the end of a chunk, "\\n" and more bytes in the next', async () => {
    const srv = await rawServer(async (s) => {
      s.write('21\r');
      await delay(30);
      s.end('\nnext');
    });
    const { rover } = recordingRover({ s: srv.address });
    try {
      const got = nextEvent(rover, 'connection');
      rover.connect();
      const [slot, socket] = await got;
      assert.equal(slot, 21);
      let text = '';
      socket.on('data', (d) => (text += d));
      await nextEvent(socket, 'end');
      assert.equal(text, 'next');
    } finally {
      await srv.close();
    }
  });

  const badLines = [
    ['abc\r\n', 'not-digits'],
    ['1x\r\n', 'not-digits'],
    ['-1\r\n', 'not-digits'],
    [' 1\r\n', 'not-digits'],
    ['12\n', 'not-digits'],
    ['12\rx', 'not-digits'],
    ['\r\n', 'empty'],
    ['000000000000000000042\r\n', 'too-long'], // 21 digits
    ['99999999999999999999\r\n', 'slot-too-large'], // 20 digits, beyond 2^53
    [`${Number.MAX_SAFE_INTEGER + 1}\r\n`, 'slot-too-large'],
  ];
  for (const [line, reason] of badLines) {
    test(`bad line ${JSON.stringify(line)}: error ERR_CALLOSUM_BAD_SLOT_LINE (${reason}), socket destroyed`, async () => {
      // The server keeps the connection open: only the rover can end it.
      const { srv, rover, result } = await handshakeWith((s) => s.write(line), { handshakeTimeout: 4000 });
      try {
        assert.equal(result[0], 'error');
        const error = result[1];
        assert.ok(error instanceof Error);
        assert.equal(error.code, 'ERR_CALLOSUM_BAD_SLOT_LINE', error.message);
        assert.equal(error.reason, reason);
        assert.equal(error.serverId, 's');
        await within(srv.sockets[0].closedPromise, 3000, 'socket not destroyed');
        assert.equal(rover.pending, 0);
        assert.deepEqual(rover.serverState('s'), { failures: 0, retryAt: 0 }, 'a bad line is not a reason to back off');
      } finally {
        await srv.close();
      }
    });
  }

  test('too many digits with no \\r\\n yet is refused without waiting for the time-out', async () => {
    const { srv, result } = await handshakeWith((s) => s.write('1'.repeat(25)), { handshakeTimeout: 4000 });
    try {
      assert.equal(result[0], 'error');
      assert.equal(result[1].code, 'ERR_CALLOSUM_BAD_SLOT_LINE');
      assert.equal(result[1].reason, 'too-long');
    } finally {
      await srv.close();
    }
  });

  test('a line of 20 digits split before its \\r\\n is accepted', async () => {
    const { srv, result } = await handshakeWith(async (s) => {
      s.write(`${'0'.repeat(19)}9`);
      await delay(30);
      s.write('\r\n');
    });
    try {
      assert.equal(result[0], 'connection', result[1]?.message);
      assert.equal(result[1], 9);
      result[2].destroy();
    } finally {
      await srv.close();
    }
  });

  for (const [what, behave] of [
    ['closed before any byte', (s) => s.end()],
    ['closed after part of the line', (s) => s.end('12')],
    ['closed after "12\\r"', (s) => s.end('12\r')],
    [
      'reset after part of the line',
      (s) => {
        s.write('3');
        setTimeout(() => s.resetAndDestroy(), 30);
      },
    ],
  ]) {
    test(`${what}: error ERR_CALLOSUM_CLOSED_EARLY, socket destroyed`, async () => {
      const { srv, rover, result } = await handshakeWith(behave, { handshakeTimeout: 4000 });
      try {
        assert.equal(result[0], 'error');
        assert.equal(result[1].code, 'ERR_CALLOSUM_CLOSED_EARLY', result[1].message);
        assert.equal(rover.pending, 0);
        assert.equal(rover.serverState('s').failures, 0);
      } finally {
        await srv.close();
      }
    });
  }
});

describe('time-outs', () => {
  test('no line within handshakeTimeout: ERR_CALLOSUM_HANDSHAKE_TIMEOUT, socket destroyed', async () => {
    const { srv, rover, result } = await handshakeWith((s) => s.write('4'), { handshakeTimeout: 150 });
    try {
      assert.equal(result[0], 'error');
      assert.equal(result[1].code, 'ERR_CALLOSUM_HANDSHAKE_TIMEOUT');
      await within(srv.sockets[0].closedPromise, 3000, 'socket not destroyed');
      assert.equal(rover.pending, 0);
      assert.equal(rover.serverState('s').failures, 0);
    } finally {
      await srv.close();
    }
  });

  test('no TCP connect within connectTimeout: unreachable and back-off, no error', async (t) => {
    // A child process listens with a backlog of 1 and blocks its event loop,
    // so it never accepts: once its accept queue is full the kernel drops
    // further SYNs and a connect hangs.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
      const s = require('net').createServer();
      s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
        process.stdout.write(s.address().port + '\\n', () => {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 15000);
          process.exit(0);
        });
      });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const fillers = [];
    t.after(() => {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
    });
    const [chunk] = await nextEvent(child.stdout, 'data', 5000);
    const port = Number(String(chunk).trim());
    for (let i = 0; i < 8; i++) {
      const f = net.connect({ host: HOST, port });
      f.on('error', () => {});
      fillers.push(f);
    }
    await waitFor(() => fillers.filter((f) => !f.connecting).length >= 1 && fillers.some((f) => f.connecting), {
      timeout: 3000,
      what: 'a full accept queue',
    });
    await delay(50);

    const { rover, events } = recordingRover(
      { stuck: { host: HOST, port } },
      { connectTimeout: 200, ROVING_INTERVAL: 5000, backOffUnreachable: true },
    );
    const got = nextEvent(rover, 'unreachable', 5000);
    assert.equal(rover.connect(), 'stuck');
    const [id, server] = await got;
    assert.equal(id, 'stuck');
    assert.deepEqual(server, { host: HOST, port });
    assert.equal(events.filter((e) => e[0] === 'error').length, 0);
    assert.equal(rover.pending, 0, 'the stuck socket was not given up');
    assert.equal(rover.serverState('stuck').failures, 1);
    assert.equal(rover.connect(), undefined, 'a server backing off is not chosen');
  });
});

describe('unreachable servers and back-off', () => {
  test('a refused connect emits unreachable (id, {host, port}), not error', async () => {
    const port = await deadPort();
    const { rover, events } = recordingRover({ dead: { host: HOST, port } });
    const got = nextEvent(rover, 'unreachable');
    rover.connect();
    const [id, server] = await got;
    assert.equal(id, 'dead');
    assert.deepEqual(server, { host: HOST, port });
    assert.equal(events.filter((e) => e[0] === 'error').length, 0);
    assert.equal(rover.pending, 0);
  });

  test('back-off doubles from ROVING_INTERVAL up to maxBackoff; the server is skipped meanwhile', async () => {
    let clock = 1000;
    const port = await deadPort();
    const { rover } = recordingRover(
      { dead: { host: HOST, port } },
      { ROVING_INTERVAL: 100, maxBackoff: 500, now: () => clock, backOffUnreachable: true },
    );
    const delays = [];
    for (let i = 0; i < 6; i++) {
      const got = nextEvent(rover, 'unreachable');
      assert.equal(rover.connect(), 'dead', `attempt ${i + 1}`);
      await got;
      const { failures, retryAt } = rover.serverState('dead');
      assert.equal(failures, i + 1);
      delays.push(retryAt - clock);
      // Skipped until retryAt, chosen again at retryAt.
      clock = retryAt - 1;
      assert.equal(rover.connect(), undefined);
      assert.equal(rover.pending, 0);
      clock = retryAt;
    }
    assert.deepEqual(delays, [100, 200, 400, 500, 500, 500]);
  });

  test('a successful handshake resets the failures', async () => {
    let clock = 0;
    const port = await deadPort();
    const { rover } = recordingRover(
      { s: { host: HOST, port } },
      { ROVING_INTERVAL: 100, now: () => clock, backOffUnreachable: true },
    );
    for (let i = 0; i < 2; i++) {
      const got = nextEvent(rover, 'unreachable');
      rover.connect();
      await got;
      clock = rover.serverState('s').retryAt;
    }
    assert.equal(rover.serverState('s').failures, 2);
    // The server comes up on that port.
    const server = new CallosumServer();
    await server.listen(port);
    try {
      const got = nextEvent(rover, 'connection');
      assert.equal(rover.connect(), 's');
      const [slot, socket] = await got;
      assert.equal(slot, 0);
      socket.destroy();
      assert.deepEqual(rover.serverState('s'), { failures: 0, retryAt: 0 });
    } finally {
      await server.close();
    }
    // Dead again: the next back-off starts over at ROVING_INTERVAL.
    const got = nextEvent(rover, 'unreachable');
    rover.connect();
    await got;
    assert.equal(rover.serverState('s').failures, 1);
    assert.equal(rover.serverState('s').retryAt - clock, 100);
  });

  test('only servers not backing off are chosen; all backing off: the tick does nothing', async () => {
    const clock = 0;
    const port = await deadPort();
    const live = new CallosumServer();
    await live.listen();
    try {
      const { rover, events } = recordingRover(
        { dead: { host: HOST, port }, live: live.address },
        { random: () => 0, now: () => clock, backOffUnreachable: true }, // random 0: the first eligible one
      );
      const got = nextEvent(rover, 'unreachable');
      assert.equal(rover.connect(), 'dead');
      await got;
      for (let i = 0; i < 3; i++) {
        const c = nextEvent(rover, 'connection');
        assert.equal(rover.connect(), 'live');
        (await c)[1].destroy();
      }
      rover.dropServer('live');
      assert.equal(rover.connect(), undefined);
      assert.equal(rover.pending, 0);
      assert.equal(events.filter((e) => e[0] === 'error').length, 0, 'all backing off is not an error');
    } finally {
      await live.close();
    }
  });

  test('the pick is floor(random() * eligible) over servers in the order they became known', () => {
    let r = 0;
    // An injected connect that opens nothing: only the choice is under test here.
    const ports = [];
    const connect = ({ port }) => {
      ports.push(port);
      return new net.Socket();
    };
    const servers = { a: { host: HOST, port: 1 }, b: { host: HOST, port: 2 }, c: { host: HOST, port: 3 } };
    const rover = new Rover({ random: () => r, connect, servers });
    rover.on('unreachable', () => {});
    rover.on('error', () => {});
    const picks = [];
    for (r of [0, 0.34, 0.67, 0.9999999]) {
      picks.push(rover.connect());
      rover.stop(); // abandons the attempt, so the server is free for the next pick
    }
    assert.deepEqual(picks, ['a', 'b', 'c', 'c']);
    assert.deepEqual(ports, [1, 2, 3, 3]);
    r = 1; // out of contract: clamped, not undefined
    assert.equal(rover.connect(), 'c');
    rover.stop();
  });

  test('no servers: error ERR_CALLOSUM_NO_SERVERS from the timer, not a crash', async () => {
    const rover = new Rover({ ROVING_INTERVAL: 20 });
    const errors = [];
    rover.on('error', (e) => errors.push(e));
    rover.start();
    try {
      await waitFor(() => errors.length >= 2, { timeout: 3000, what: 'two ticks' });
      for (const e of errors) assert.equal(e.code, 'ERR_CALLOSUM_NO_SERVERS');
    } finally {
      rover.stop();
    }
  });
});

describe('server list', () => {
  test('addServer and dropServer change what is chosen', async () => {
    const a = new CallosumServer();
    const b = new CallosumServer();
    await a.listen();
    await b.listen();
    try {
      const { rover } = recordingRover({});
      rover.addServer('a', a.address);
      assert.deepEqual(rover.servers, { a: a.address });
      let got = nextEvent(rover, 'connection');
      assert.equal(rover.connect(), 'a');
      (await got)[1].destroy();
      rover.addServer('b', b.address).dropServer('a');
      assert.deepEqual(rover.servers, { b: b.address });
      got = nextEvent(rover, 'connection');
      assert.equal(rover.connect(), 'b');
      const [, socket] = await got;
      assert.equal(socket.remotePort, b.port);
      socket.destroy();
      rover.dropServer('b').dropServer('nope');
      assert.deepEqual(rover.servers, {});
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('re-adding a known id with the same address keeps its back-off; a new address resets it', async () => {
    const port = await deadPort();
    const { rover } = recordingRover({ s: { host: HOST, port } }, { backOffUnreachable: true });
    const got = nextEvent(rover, 'unreachable');
    rover.connect();
    await got;
    rover.addServer('s', { host: HOST, port });
    assert.equal(rover.serverState('s').failures, 1);
    rover.addServer('s', { host: HOST, port: port === 65535 ? 1 : port + 1 });
    assert.deepEqual(rover.serverState('s'), { failures: 0, retryAt: 0 });
  });

  test('dropServer abandons the attempts to that server silently', async () => {
    const srv = await rawServer(() => {}); // never sends a line
    const { rover, events } = recordingRover({ s: srv.address }, { handshakeTimeout: 300 });
    try {
      rover.connect();
      await waitFor(() => srv.sockets.length === 1, { timeout: 3000, what: 'the connection' });
      assert.equal(rover.pending, 1);
      rover.dropServer('s');
      assert.equal(rover.pending, 0);
      await within(srv.sockets[0].closedPromise, 3000, 'socket not destroyed');
      await delay(400); // past the handshake time-out: nothing must fire
      assert.deepEqual(events, []);
    } finally {
      await srv.close();
    }
  });
});

describe('start and stop', () => {
  test('start() connects at once and every interval; stop() stops it; both idempotent', async () => {
    const server = new CallosumServer();
    await server.listen();
    const { rover, events } = recordingRover({ s: server.address }, { ROVING_INTERVAL: 40 });
    rover.on('connection', (_slot, socket) => socket.destroy());
    try {
      assert.equal(rover.running, false);
      rover.start();
      rover.start();
      assert.equal(rover.running, true);
      await waitFor(() => events.length >= 3, { timeout: 3000, what: 'three connections' });
      rover.stop();
      rover.stop();
      assert.equal(rover.running, false);
      await delay(50);
      const accepted = server.accepted;
      await delay(200); // five intervals
      assert.equal(server.accepted, accepted, 'a stopped rover still connects');
      for (const e of events) assert.equal(e[0], 'connection');
      // Restartable.
      rover.start();
      await waitFor(() => server.accepted > accepted, { timeout: 3000, what: 'a connection after restart' });
      rover.stop();
    } finally {
      rover.stop();
      await server.close();
    }
  });

  test('start() attempts at once, in the call, as the original (listeners go on before it)', async () => {
    const rover = new Rover({ ROVING_INTERVAL: 60000 });
    const errors = [];
    rover.on('error', (e) => errors.push(e));
    rover.start(); // no servers: the first tick's error is emitted within start()
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'ERR_CALLOSUM_NO_SERVERS');
    rover.stop();
  });

  test('stop() destroys sockets still handshaking, silently', async () => {
    const srv = await rawServer(() => {}); // never sends a line
    const { rover, events } = recordingRover({ s: srv.address }, { ROVING_INTERVAL: 30, handshakeTimeout: 250 });
    try {
      rover.start();
      await waitFor(() => srv.sockets.length >= 2, { timeout: 3000, what: 'two connections' });
      rover.stop();
      assert.equal(rover.pending, 0);
      await within(Promise.all(srv.sockets.map((s) => s.closedPromise)), 3000, 'sockets not destroyed');
      await delay(350); // past the handshake time-out: no error after stop
      assert.deepEqual(events, []);
    } finally {
      rover.stop();
      await srv.close();
    }
  });

  test('stop() destroys sockets still connecting, silently', async () => {
    const port = await deadPort();
    const { rover, events } = recordingRover({ dead: { host: HOST, port } });
    rover.connect();
    assert.equal(rover.pending, 1);
    rover.stop();
    assert.equal(rover.pending, 0);
    await delay(100);
    assert.deepEqual(events, [], 'an abandoned attempt reported something');
  });

  test('the timer does not keep the process alive', async () => {
    // A child starts a rover against a server that refuses, never stops it,
    // and must exit by itself.
    const rover = path.join(__dirname, '..', 'lib', 'rover', 'index.js');
    const port = await deadPort();
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
      const Rover = require(${JSON.stringify(rover)});
      const r = new Rover({ ROVING_INTERVAL: 10, servers: { a: { host: '127.0.0.1', port: ${port} } } });
      r.on('unreachable', () => {}); r.on('error', () => {});
      r.start();
      setTimeout(() => console.log('alive'), 100);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    const [code, signal] = await once(child, 'exit');
    clearTimeout(timer);
    assert.equal(signal, null, 'the child had to be killed: the rover kept it alive');
    assert.equal(code, 0);
    assert.equal(out.trim(), 'alive');
  });
});

describe('parseSlotLine (the rules, without sockets)', () => {
  const { parseSlotLine } = Rover;
  test('whole, partial and bad lines', () => {
    assert.deepEqual(parseSlotLine(Buffer.from('13\r\n')), { slot: 13, used: 4 });
    assert.deepEqual(parseSlotLine(Buffer.from('7\r\nok\n')), { slot: 7, used: 3 });
    const line = Buffer.from('4096\r\n');
    for (let cut = 0; cut < line.length; cut++) assert.equal(parseSlotLine(line.subarray(0, cut)), null, `cut ${cut}`);
    assert.equal(parseSlotLine(Buffer.from('1'.repeat(20))), null);
    assert.equal(parseSlotLine(Buffer.from('1'.repeat(21))).reason, 'too-long');
    assert.equal(parseSlotLine(Buffer.from('\r\n')).reason, 'empty');
    assert.equal(parseSlotLine(Buffer.from('1\r\r')).reason, 'not-digits');
  });
  test('a bare "12\\n" (a line feed without its carriage return) is not a slot line', () => {
    const bad = parseSlotLine(Buffer.from('12\n'));
    assert.equal(bad.reason, 'not-digits');
    assert.match(bad.message, /\S/);
    // ... and neither with more after it, nor cut after the digits.
    assert.equal(parseSlotLine(Buffer.from('12\n\r\n')).reason, 'not-digits');
    assert.equal(parseSlotLine(Buffer.from('12')), null);
  });
});

describe('one DNS lookup per server at a time (issue 18: lookups cannot pile up)', () => {
  // A resolver that never answers until told to: what a black-holed DNS
  // server looks like from here (the real dns.lookup would hold a libuv
  // thread that connectTimeout cannot free).
  function stuckResolver() {
    const calls = [];
    const lookup = (hostname, options, callback) => calls.push({ hostname, options, callback });
    return { calls, lookup };
  }

  test('a lookup that never answers: one lookup per server, however many ticks; freed when it answers', async () => {
    const resolver = stuckResolver();
    let ticks = 0;
    const random = () => {
      ticks += 1;
      return (ticks % 2) / 2; // 'a', 'b' in turn
    };
    const { rover, events } = recordingRover(
      { a: { host: 'a.stuck.test', port: 1 }, b: { host: 'b.stuck.test', port: 2 } },
      { ROVING_INTERVAL: 5, connectTimeout: 20, lookup: resolver.lookup, random },
    );
    try {
      rover.start();
      await delay(300); // about 60 ticks, 15 connect time-outs' worth
      assert.ok(ticks >= 20, `only ${ticks} ticks`);
      assert.deepEqual(resolver.calls.map((c) => c.hostname).sort(), ['a.stuck.test', 'b.stuck.test']);
      // Each attempt timed out once (unreachable), then its server waited for its lookup.
      assert.deepEqual(events.map((e) => e.slice(0, 2)).sort(), [
        ['unreachable', 'a'],
        ['unreachable', 'b'],
      ]);
      assert.equal(rover.pending, 0);
      rover.stop();
      // The lookups answer (late, after their sockets were destroyed): nothing is reported,
      // and the servers can be tried again.
      for (const { options, callback } of resolver.calls) {
        if (options.all) callback(null, [{ address: HOST, family: 4 }]);
        else callback(null, HOST, 4);
      }
      await delay(20);
      assert.equal(events.length, 2);
      const tried = rover.connect();
      assert.ok(tried === 'a' || tried === 'b');
      assert.equal(resolver.calls.length, 3);
      assert.equal(resolver.calls[2].hostname, `${tried}.stuck.test`);
    } finally {
      rover.stop();
    }
  });

  test('a lookup that fails is unreachable and frees the server at once', async () => {
    const seen = [];
    const lookup = (hostname, _options, callback) => {
      seen.push(hostname);
      const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      setImmediate(callback, error);
    };
    const { rover, events } = recordingRover({ gone: { host: 'gone.test', port: 1 } }, { lookup });
    for (let i = 0; i < 3; i++) {
      const got = nextEvent(rover, 'unreachable');
      assert.equal(rover.connect(), 'gone');
      await got;
    }
    assert.deepEqual(seen, ['gone.test', 'gone.test', 'gone.test']);
    assert.equal(events.length, 3);
    assert.equal(rover.serverState('gone').failures, 3);
  });

  test('a slow lookup that answers: the connection is made, and no second attempt meanwhile', async () => {
    const server = new CallosumServer();
    await server.listen();
    const calls = [];
    const lookup = (hostname, options, callback) => {
      calls.push(hostname);
      setTimeout(() => (options.all ? callback(null, [{ address: HOST, family: 4 }]) : callback(null, HOST, 4)), 80);
    };
    const { rover, events } = recordingRover({ s: { host: 'slow.test', port: server.port } }, { lookup });
    try {
      assert.equal(rover.connect(), 's');
      for (let i = 0; i < 5; i++)
        assert.equal(rover.connect(), undefined, 'a second attempt while the first is in flight');
      assert.equal(rover.pending, 1);
      const [slot, socket] = await nextEvent(rover, 'connection');
      assert.equal(slot, 0);
      assert.equal(socket.remotePort, server.port);
      socket.destroy();
      assert.deepEqual(calls, ['slow.test']);
      assert.equal(events.length, 1);
      assert.equal(rover.connect(), 's', 'free again once the attempt has settled');
      await nextEvent(rover, 'connection').then(([, s]) => s.destroy());
    } finally {
      rover.stop();
      await server.close();
    }
  });

  test('attempts to an IP address overlap, as in the original: a slow handshake does not hold the server', async () => {
    const srv = await rawServer(() => {}); // never sends a line
    const { rover, events } = recordingRover({ s: srv.address }, { ROVING_INTERVAL: 10, handshakeTimeout: 1000 });
    try {
      rover.start();
      await waitFor(() => srv.sockets.length >= 3, {
        timeout: 3000,
        what: 'three connections while none has answered',
      });
      assert.ok(rover.pending >= 3, `pending ${rover.pending}`);
      assert.deepEqual(events, []);
    } finally {
      rover.stop();
      await srv.close();
    }
  });

  test('a host name that resolves at once: attempts overlap too (only the lookup is one at a time)', async () => {
    const srv = await rawServer(() => {}); // never sends a line
    let lookups = 0;
    const lookup = (_hostname, options, callback) => {
      lookups += 1;
      setImmediate(() => (options.all ? callback(null, [{ address: HOST, family: 4 }]) : callback(null, HOST, 4)));
    };
    const { rover, events } = recordingRover(
      { s: { host: 'quick.test', port: srv.port } },
      { ROVING_INTERVAL: 10, handshakeTimeout: 1000, lookup },
    );
    try {
      rover.start();
      await waitFor(() => srv.sockets.length >= 3, {
        timeout: 3000,
        what: 'three connections while none has answered',
      });
      assert.ok(lookups >= 3, `${lookups} lookups`);
      assert.ok(rover.pending >= 3, `pending ${rover.pending}`);
      assert.deepEqual(events, []);
    } finally {
      rover.stop();
      await srv.close();
    }
  });

  test('an IP address is connected to without a lookup', async () => {
    const server = new CallosumServer();
    await server.listen();
    let lookups = 0;
    const { rover } = recordingRover({ s: server.address }, { lookup: () => lookups++ });
    try {
      const got = nextEvent(rover, 'connection');
      rover.connect();
      (await got)[1].destroy();
      assert.equal(lookups, 0);
    } finally {
      await server.close();
    }
  });
});

describe('injected connect', () => {
  test('connect({ host, port, lookup }) makes the socket; a connect that throws counts as unreachable', async () => {
    const server = new CallosumServer();
    await server.listen();
    const calls = [];
    const connect = (options) => {
      calls.push(options);
      if (options.port === 1) throw new Error('no route');
      return net.connect(options);
    };
    const { rover, events } = recordingRover(
      { s: server.address, bad: { host: HOST, port: 1 } },
      { connect, random: () => 0 },
    );
    try {
      const got = nextEvent(rover, 'connection');
      assert.equal(rover.connect(), 's');
      const [slot, socket] = await got;
      assert.equal(slot, 0);
      socket.destroy();
      assert.equal(calls.length, 1);
      assert.deepEqual(Object.keys(calls[0]).sort(), ['host', 'lookup', 'port']);
      assert.equal(calls[0].host, HOST);
      assert.equal(calls[0].port, server.port);
      assert.equal(typeof calls[0].lookup, 'function');
      rover.dropServer('s');
      assert.equal(rover.connect(), 'bad');
      assert.deepEqual(events.at(-1), ['unreachable', 'bad', { host: HOST, port: 1 }]);
      assert.equal(rover.pending, 0);
      assert.equal(rover.serverState('bad').failures, 1);
    } finally {
      rover.stop();
      await server.close();
    }
  });
});
