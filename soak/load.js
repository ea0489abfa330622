'use strict';

// The clients and their request load. Each client is a CallosumClient on
// rove() over every server, with `workers` concurrent loops that lease a
// socket (getConnection, or acquire with a timeout), send one request, read
// its answer and return the socket; now and then a worker destroys or
// half-closes its socket before returning it, or returns it twice.

const { seededRandom } = require('../examples/seeded-random.js');
const { safeMessage, kReturnedPaused, kRecord } = require('./invariants.js');
const { snapshot, diff } = require('./misuse.js');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class SoakClient {
  constructor({ index, CallosumClient, servers, opts, tracker, violations, counters, seed }) {
    this.index = index;
    this.opts = opts;
    this.tracker = tracker;
    this.v = violations;
    this.counters = counters; // shared: requests, outcomes, client faults
    this.random = seededRandom(seed);
    this.kept = new Set(); // sockets this client kept (see invariants.js)
    this.errorEvents = 0;
    this.stopping = false;
    this.nextRequest = 0;
    this.workers = [];
    // A light client (one or two workers that pause between requests) keeps
    // idle sockets, some never lent: where a dead idle socket would hide.
    this.light = this.random() < opts.lightShare;
    this.workerCount = this.light ? 1 + Math.floor(this.random() * 2) : opts.workers;
    this.thinkMs = this.light ? 5 + Math.floor(this.random() * 36) : 0;

    // Part of the pools hold little (issue 18): a flooded idle socket is
    // dropped soon, and bursts come close to the bound.
    this.smallHeld =
      opts.heldSupported && Math.floor((index + 1) * opts.smallHeldShare) > Math.floor(index * opts.smallHeldShare);
    // A share of the pools are adaptive (E6, issue 20): they lend by an
    // effective slot (slot x its server's weight), not the lowest slot; half
    // of them rove with two probes a tick. Picked by index, like smallHeld,
    // so the two shares mix.
    this.adaptive =
      opts.adaptiveSupported === true &&
      Math.floor((index + 1) * opts.adaptiveShare) > Math.floor(index * opts.adaptiveShare);
    this.adaptiveOrdinal = this.adaptive ? Math.floor(index * opts.adaptiveShare) : -1;
    this.probes =
      this.adaptive &&
      Math.floor((this.adaptiveOrdinal + 1) * opts.probesShare) > Math.floor(this.adaptiveOrdinal * opts.probesShare)
        ? 2
        : 1;
    const clientOptions = { MAX_SLOTS: opts.maxSlots };
    if (this.smallHeld) clientOptions.maxHeldBytes = opts.smallHeld;
    if (this.adaptive) clientOptions.adaptive = true;
    const client = new CallosumClient(clientOptions);
    this.client = client;
    if (opts.adaptiveSupported === true && client.adaptive !== this.adaptive) {
      violations.add('adaptive-flag', `client ${index}: client.adaptive is ${client.adaptive}, asked ${this.adaptive}`);
    }
    // undefined for a package without the bound (its checks are skipped).
    this.maxHeldBytes = client.stats().maxHeldBytes;
    tracker.register(this);
    this.canLease = typeof client.lease === 'function';
    client.on('error', (err) => {
      this.errorEvents++;
      tracker.onError(this, err, "'error' event");
    });
    client.on('unreachable', () => counters.add('rover', 'unreachable'));
    // Watch every offer: remember the kept sockets and their server records.
    // Direct calls of client.newConnection (wrapped on the instance; the
    // pool's method runs as is, with every argument), and the rover's
    // offers, seen on its 'connection' event just before and just after the
    // pool's own listener (since issue 20, rove() offers with the server's
    // id without going through newConnection; an older package's rover
    // calls newConnection, and the socket is counted once).
    const self = this;
    const offer = CallosumClient.prototype.newConnection;
    client.newConnection = function newConnection(slot, socket, ...rest) {
      const rec = tracker.recordOf(socket);
      offer.call(this, slot, socket, ...rest);
      tracker.afterOffer(self, slot, socket, rec);
    };
    const roverSeed = seededRandom(seed ^ 0x7e7e);
    const roverOptions = {
      ROVING_INTERVAL: opts.interval,
      connectTimeout: 500,
      handshakeTimeout: 500,
      // Half the rovers back off from a server that refuses connections.
      backOffUnreachable: this.random() < 0.5,
      maxBackoff: 2000,
      random: roverSeed,
    };
    if (this.probes !== 1) roverOptions.probes = this.probes;
    const rover = client.rove(servers, roverOptions);
    if (rover !== undefined && rover !== null && typeof rover.prependListener === 'function') {
      const before = new WeakMap();
      rover.prependListener('connection', (_slot, socket) => {
        const rec = tracker.recordOf(socket);
        if (rec !== undefined) before.set(socket, rec);
      });
      rover.on('connection', (slot, socket) => {
        if (socket === null || typeof socket !== 'object') return;
        tracker.afterOffer(self, slot, socket, before.get(socket));
        before.delete(socket);
      });
    }
  }

  start() {
    for (let w = 0; w < this.workerCount; w++) this.workers.push(this.work());
  }

  async stop() {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  async work() {
    const { opts, tracker, counters, random, client } = this;
    while (!this.stopping) {
      // lease() where the package has it (an acquire() whose release is
      // once only), else acquire() or getConnection().
      const api =
        this.canLease && random() < opts.leaseShare ? 'lease' : random() < opts.acquireShare ? 'acquire' : 'get';
      let socket;
      let lease = null;
      let lentNow; // what the synchronous part of acquire/lease lent, if anything
      const candidates = tracker.idleCandidates(this);
      if (api === 'get') {
        try {
          socket = client.getConnection();
        } catch (err) {
          this.v.add('threw', `client ${this.index} getConnection threw ${safeMessage(err)}`);
        }
        tracker.checkLowest(this, candidates, socket, 'getConnection');
        if (socket === undefined) {
          counters.add('get', 'empty');
          await sleep(1 + Math.floor(random() * 8));
          continue;
        }
      } else {
        const timeout = 20 + Math.floor(random() * 480);
        // Some callers give up by an AbortSignal instead (a waiter that gave
        // up must never receive a socket, and none may be lost on its way).
        let abort = null;
        let options = { timeout };
        if (random() < opts.abortShare) {
          const ac = new AbortController();
          abort = setTimeout(() => ac.abort(), Math.floor(random() * 300));
          options = random() < 0.5 ? { signal: ac.signal } : { timeout, signal: ac.signal };
        }
        let promise;
        try {
          // lease() calls acquire() before its first await: what is idle is
          // lent in this call either way.
          promise = api === 'lease' ? client.lease(options) : client.acquire(options);
        } catch (err) {
          this.v.add('threw', `client ${this.index} ${api} threw ${safeMessage(err)}`);
          await sleep(5);
          continue;
        }
        // What the synchronous part lent, if anything (the pool marks it).
        lentNow = candidates.find((s) => s._leased === true && !tracker.isHeld(s));
        tracker.checkLowest(this, candidates, lentNow, api);
        try {
          if (api === 'lease') {
            lease = await promise;
            socket = lease.socket;
          } else {
            socket = await promise;
          }
        } catch (err) {
          tracker.onError(this, err, `${api} rejection`);
          counters.add(api, `rejected ${err?.code}`);
          continue;
        } finally {
          if (abort !== null) clearTimeout(abort);
        }
        if (lentNow !== undefined && socket !== lentNow) {
          this.v.add(
            'acquire-wrong-socket',
            `client ${this.index}: ${api} resolved with another socket than the idle one it lent`,
          );
        }
      }
      if (!tracker.onLease(this, socket, api)) continue;
      // A waiter's socket (a return or a new connection handed to it): the
      // adaptive pools' servers() leases may leave these out (report.js).
      if (this.adaptive && api !== 'get' && lentNow === undefined)
        counters.add('adaptive', 'leases that waited (handed to a waiter)');
      const id = `${this.index}.${this.nextRequest++}`;
      const outcome = await this.request(socket, id);
      counters.add(api, outcome);
      this.giveBack(socket, outcome, api, lease);
      if (this.thinkMs > 0) await sleep(Math.floor(random() * this.thinkMs));
    }
  }

  // One request on a lent socket: resolves with 'ok' or why it failed.
  request(socket, id) {
    const tracker = this.tracker;
    const sc = this;
    return new Promise((resolve) => {
      let text = '';
      let firstLine = true; // only the first line of a lease can be cut
      let done = false;
      let timer = null;
      function finish(outcome) {
        if (done) return;
        done = true;
        if (timer !== null) clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('end', onEnd);
        socket.removeListener('close', onClose);
        socket.removeListener('error', onError);
        resolve(outcome);
      }
      function onData(chunk) {
        text += chunk.toString('latin1');
        let nl;
        while ((nl = text.indexOf('\n')) >= 0) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 1);
          const first = firstLine;
          firstLine = false;
          if (line.startsWith('#')) {
            tracker.onBanner(socket, line);
          } else if (first && tracker.isFloodTail(socket, line)) {
            // The rest of a flood line whose start Node emitted to no one
            // (the socket was returned flowing): not the pool's bytes to keep.
          } else if (line === `ok ${id}`) {
            tracker.onAnswer(sc, socket, id);
            // After the answer, only a goodbye may come unasked.
            let rest;
            while ((nl = text.indexOf('\n')) >= 0) {
              rest = text.slice(0, nl);
              text = text.slice(nl + 1);
              if (rest.startsWith('#')) tracker.onBanner(socket, rest);
              else tracker.onUnexpected(sc, socket, rest, id);
            }
            finish(text.length === 0 ? 'ok' : 'extra bytes');
            return;
          } else {
            // Another holder's answer, or bytes lost, reordered or repeated
            // on their way through the pool.
            tracker.onUnexpected(sc, socket, line, id);
            finish('unexpected answer');
            return;
          }
        }
      }
      // The connection ended under its holder: the server must have closed
      // it (a displaced or misused socket is not the pool's to close while
      // lent).
      function gone(outcome) {
        const rec = socket[kRecord];
        if (!done && rec !== undefined && rec.serverClosedAt === undefined) {
          sc.v.add(
            'held-socket-closed',
            `client ${sc.index}: slot ${socket._slot} (conn ${rec.id}) ${outcome} while held, and its server did not close it`,
            outcome,
          );
        }
        finish(outcome);
      }
      function onEnd() {
        gone('peer ended');
      }
      function onClose() {
        gone('closed');
      }
      function onError() {
        gone('socket error');
      }
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onClose);
      socket.on('error', onError);
      if (socket.readableEnded) return finish('peer ended');
      if (socket.destroyed || !socket.writable) return finish('not writable');
      socket.resume(); // a holder before may have paused it
      socket.write(`${id}\n`);
      timer = setTimeout(() => finish('timeout'), sc.opts.requestTimeout);
      return undefined;
    });
  }

  giveBack(socket, outcome, api, lease) {
    const { random, opts, counters, client, tracker } = this;
    if (outcome !== 'ok' && outcome !== 'peer ended' && outcome !== 'closed' && outcome !== 'socket error') {
      // Out of step with the server: a careful user closes it.
      socket.destroy();
    } else if (outcome === 'ok') {
      const r = random();
      if (r < opts.clientDestroyRate) {
        counters.add('fault', 'client destroy before return');
        socket.destroy();
      } else if (r < opts.clientDestroyRate + opts.clientEndRate) {
        counters.add('fault', 'client half-close before return');
        socket.end();
      }
    }
    // Some users stop reading before they give a socket back.
    const paused = random() < opts.pausedShare;
    if (paused) socket.pause();
    socket[kReturnedPaused] = paused;
    tracker.onRelease(socket);
    const errorsBefore = this.errorEvents;
    const waiting = client.waiting;
    if (lease !== null) lease.release();
    else client.returnConnection(socket);
    if (this.errorEvents !== errorsBefore) {
      this.v.add('return-refused', `client ${this.index}: a return of a socket lent by ${api} gave an 'error'`);
    }
    if (lease !== null) {
      // A lease's second release() is refused whoever holds the socket
      // since: try it in the same tick, and later, when another caller may
      // hold the socket.
      if (random() < opts.doubleReturnRate) this.releaseAgain(lease, 'double release');
      if (random() < opts.doubleReturnRate) {
        setTimeout(() => this.releaseAgain(lease, 'late double release'), Math.floor(random() * 20));
      }
      return;
    }
    if (random() < opts.doubleReturnRate) {
      // The same caller returns it again, in the same tick.
      const kind = waiting > 0 || client.waiting > 0 ? 'double return (waiters)' : 'double return';
      counters.add('misuse', kind);
      const before = snapshot(client);
      const errors = this.errorEvents;
      try {
        client.returnConnection(socket);
      } catch (err) {
        this.v.add('misuse-threw', `client ${this.index} ${kind}: threw ${safeMessage(err)}`, kind);
      }
      if (this.errorEvents === errors)
        this.v.add('misuse-silent', `client ${this.index} ${kind}: no 'error' event`, kind);
      const d = diff(before, snapshot(client));
      if (d !== '') this.v.add('misuse-changed-pool', `client ${this.index} ${kind}: ${d}`, kind);
    }
  }

  releaseAgain(lease, kind) {
    const client = this.client;
    this.counters.add('misuse', kind);
    const before = snapshot(client);
    const errors = this.errorEvents;
    try {
      lease.release();
    } catch (err) {
      this.v.add('misuse-threw', `client ${this.index} ${kind}: threw ${safeMessage(err)}`, kind);
    }
    if (this.errorEvents === errors)
      this.v.add('misuse-silent', `client ${this.index} ${kind}: no 'error' event`, kind);
    const d = diff(before, snapshot(client));
    if (d !== '') this.v.add('misuse-changed-pool', `client ${this.index} ${kind}: ${d}`, kind);
  }

  // End of the run: stop the rover and close the pool.
  close() {
    return this.client.close();
  }
}

module.exports = { SoakClient, sleep };
