'use strict';

/*
 * npm run demo: Callosum balancing a fleet, live, on loopback.
 *
 * Phase 1 (Callosum): SERVERS servers, CLIENTS clients, each a pool of
 * MAX_SLOTS connections fed by its rover (client.rove). Every client sends a
 * steady Poisson stream of requests through getConnection/returnConnection.
 * A table, once a second, shows per server: connections, requests per
 * second, requests in flight. Mid-run a server is added, later one is killed
 * (its sockets destroyed, its port closed: the rovers find it unreachable and
 * back off). Then the same load runs with each client's connections assigned
 * to servers at random (phase 2), and the two closing lines compare them.
 *
 * Each server works on at most WORKERS requests at a time, DELAY ms each; the
 * rest queue. max/mean: the busiest server's count over the mean of all live
 * servers, measured over the steady window (connections: sampled every
 * 100 ms and averaged; requests: counted over the window).
 *
 * Everything is seeded (rovers' choices, arrivals, random assignment); the
 * timing of real sockets is not, so numbers vary a little from run to run.
 */

const { performance } = require('node:perf_hooks');
const { CallosumServer } = require('../__test__/fixtures/callosum-server.js');
const {
  seededRandom,
  FleetClient,
  Load,
  maxOverMean,
  percentile,
  sleep,
} = require('../__test__/fixtures/loopback-fleet.js');

// Numbers may be overridden from the environment, e.g. DEMO_RATE=100.
const CONFIG = {
  SERVERS: 4,
  CLIENTS: 20,
  MAX_SLOTS: 8,
  ROVING_INTERVAL: 100, // ms
  RATE: 50, // requests per second per client
  DELAY: 10, // ms of work per request
  WORKERS: 4, // requests worked on at once per server
  ADD_AT: 5, // s: a server joins
  KILL_AT: 10, // s: a server dies
  WINDOW: [13, 18], // s: steady state measured (phase 1)
  RANDOM_WARMUP: 1, // s (phase 2)
  RANDOM_WINDOW: 5, // s (phase 2)
  SEED: 20261126,
};
for (const key of Object.keys(CONFIG)) {
  const v = process.env[`DEMO_${key}`];
  if (v !== undefined && typeof CONFIG[key] === 'number' && Number.isFinite(Number(v))) CONFIG[key] = Number(v);
}

const t0 = performance.now();
const elapsed = () => (performance.now() - t0) / 1000;

function pad(s, n) {
  s = String(s);
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/** The live table: one row a second. */
class Table {
  constructor(servers) {
    this.servers = servers; // [{ name, server, alive }]
    this.lastRequests = new Map(servers.map((s) => [s, s.server.requests]));
    this.lastTime = performance.now();
  }

  header() {
    const names = this.servers.map((s) => pad(s.name, 18)).join(' ');
    const sub = this.servers.map(() => '  conn req/s infl').join(' ');
    console.log(`  time ${names}`);
    console.log(`       ${sub}`);
  }

  row(note = '') {
    const now = performance.now();
    const dt = (now - this.lastTime) / 1000;
    this.lastTime = now;
    const cells = this.servers.map((s) => {
      const last = this.lastRequests.get(s) ?? s.server.requests;
      this.lastRequests.set(s, s.server.requests);
      if (!s.alive) return pad(s.joined ? 'dead' : '-', 18);
      const rps = Math.round((s.server.requests - last) / dt);
      return `${pad(s.server.connections, 6)}${pad(rps, 6)}${pad(s.server.inFlight, 5)} `;
    });
    console.log(`${pad(`${elapsed().toFixed(0)}s`, 6)} ${cells.join(' ')}${note ? `  ${note}` : ''}`);
  }
}

/** Steady-state statistics over a window. */
class Window {
  constructor(servers, clientsLatency) {
    this.servers = servers;
    this.ratios = [];
    this.latencies = clientsLatency;
    this.startRequests = new Map(servers.filter((s) => s.alive).map((s) => [s, s.server.requests]));
    this.timer = setInterval(() => this.sample(), 100);
  }

  sample() {
    const live = this.servers.filter((s) => s.alive);
    this.ratios.push(maxOverMean(live.map((s) => s.server.connections)));
  }

  finish() {
    clearInterval(this.timer);
    const requests = [...this.startRequests].filter(([s]) => s.alive).map(([s, n]) => s.server.requests - n);
    const sorted = this.latencies.slice().sort((a, b) => a - b);
    return {
      connections: this.ratios.reduce((a, b) => a + b, 0) / this.ratios.length,
      requests: maxOverMean(requests),
      p99: percentile(sorted, 99),
      count: sorted.length,
    };
  }
}

async function startServer(name) {
  const server = new CallosumServer({ name, delay: CONFIG.DELAY, workers: CONFIG.WORKERS });
  await server.listen();
  return { name, server, alive: true, joined: true };
}

async function phaseCallosum() {
  console.log(
    `Phase 1: Callosum. ${CONFIG.SERVERS} servers, ${CONFIG.CLIENTS} clients (MAX_SLOTS ${CONFIG.MAX_SLOTS}, ` +
      `rover every ${CONFIG.ROVING_INTERVAL} ms), ${CONFIG.RATE} req/s per client, ${CONFIG.WORKERS} workers x ${CONFIG.DELAY} ms per server.`,
  );
  const servers = [];
  for (let i = 1; i <= CONFIG.SERVERS; i++) servers.push(await startServer(`s${i}`));
  const newcomer = { name: `s${CONFIG.SERVERS + 1}`, server: null, alive: false, joined: false };
  servers.push(newcomer);
  newcomer.server = { connections: 0, requests: 0, inFlight: 0 };

  const seed = seededRandom(CONFIG.SEED);
  const known = {};
  for (const s of servers.filter((x) => x.alive)) known[s.name] = s.server.address;

  let windowLatencies = null;
  const failures = new Map(); // port -> failed requests
  let killedPort = -1;
  let killTime = Infinity;
  let failedSentAfterKill = 0;
  let lastSentAfterKill = 0;
  let failedElsewhere = 0;
  let ok = 0;
  const clients = [];
  for (let i = 0; i < CONFIG.CLIENTS; i++) {
    const client = new FleetClient({
      MAX_SLOTS: CONFIG.MAX_SLOTS,
      onResult: (r) => {
        if (r.ok) {
          ok++;
          if (windowLatencies) windowLatencies.push(r.latency);
        } else {
          failures.set(r.port, (failures.get(r.port) || 0) + 1);
          if (r.port === killedPort && r.start >= killTime) {
            // Sent to it after it died, before its client saw the connection close.
            failedSentAfterKill++;
            lastSentAfterKill = Math.max(lastSentAfterKill, r.start - killTime);
          }
        }
      },
    });
    client.rove(known, { ROVING_INTERVAL: CONFIG.ROVING_INTERVAL, random: seededRandom(Math.floor(seed() * 2 ** 32)) });
    clients.push(client);
  }
  // The load starts once every pool is full (MAX_SLOTS rover ticks or so).
  while (clients.some((c) => c.pool.slotCount < CONFIG.MAX_SLOTS) && elapsed() < 10) await sleep(20);
  console.log(`Pools full after ${elapsed().toFixed(1)} s; load starts.`);
  const load = new Load(clients, CONFIG.RATE, seededRandom(Math.floor(seed() * 2 ** 32)));
  load.start();

  const table = new Table(servers);
  table.header();
  let added = null;
  let killed = null;
  let balancedAt = null;
  let withinSince = null;
  let window = null;
  let result = null;
  const end = CONFIG.WINDOW[1];
  let nextRow = 1;
  while (elapsed() < end) {
    await sleep(100);
    const t = elapsed();
    let note = '';
    if (added === null && t >= CONFIG.ADD_AT) {
      const s = await startServer(newcomer.name);
      newcomer.server = s.server;
      newcomer.alive = true;
      newcomer.joined = true;
      for (const c of clients) c.rover.addServer(newcomer.name, newcomer.server.address);
      added = elapsed();
      note = `${newcomer.name} added`;
      console.log(`       >> ${newcomer.name} joins at ${added.toFixed(1)} s`);
    }
    if (added !== null && balancedAt === null) {
      const live = servers.filter((s) => s.alive);
      const mean = live.reduce((a, s) => a + s.server.connections, 0) / live.length;
      const within = Math.abs(newcomer.server.connections - mean) <= 0.2 * mean;
      if (!within) withinSince = null;
      else if (withinSince === null) withinSince = elapsed();
      // "Holds": within 20% of the mean and still so a second later.
      if (withinSince !== null && elapsed() - withinSince >= 1) balancedAt = withinSince;
    }
    if (killed === null && t >= CONFIG.KILL_AT) {
      const victim = servers[1];
      const port = victim.server.port;
      const inFlightServer = victim.server.inFlight;
      let inFlightClients = 0;
      for (const c of clients) for (const r of c.inFlight) if (r.port === port) inFlightClients++;
      const failedBefore = failures.get(port) || 0;
      killedPort = port;
      killTime = performance.now();
      await victim.server.close();
      victim.alive = false;
      killed = { name: victim.name, port, at: elapsed(), inFlightServer, inFlightClients, failedBefore };
      console.log(
        `       >> ${victim.name} killed at ${killed.at.toFixed(1)} s ` +
          `(${inFlightClients} requests in flight on it, ${victim.server.connections} connections)`,
      );
    }
    if (window === null && t >= CONFIG.WINDOW[0]) {
      windowLatencies = [];
      window = new Window(servers, windowLatencies);
    }
    if (t >= nextRow) {
      table.row(note);
      nextRow = Math.floor(t) + 1;
    }
  }
  result = window.finish();
  const live = servers.filter((s) => s.alive);
  const endMean = live.reduce((a, s) => a + s.server.connections, 0) / live.length;
  const endNew = newcomer.server.connections;
  windowLatencies = null;
  load.stop();
  await Promise.all(clients.map((c) => c.close()));
  await sleep(50);
  const totalFailed = [...failures.values()].reduce((a, b) => a + b, 0);
  const failedOnKilled = (failures.get(killed.port) || 0) - killed.failedBefore;
  failedElsewhere = totalFailed - failedOnKilled;
  const noConnection = clients.reduce((a, c) => a + c.noConnection, 0);
  const unreachable = clients.reduce((a, c) => a + c.unreachable, 0);
  const errors = clients.flatMap((c) => c.errors);
  for (const s of servers) if (s.alive) await s.server.close();

  console.log('');
  console.log(
    `${newcomer.name} joined at ${added.toFixed(1)} s and held within 20% of the mean connections ` +
      (balancedAt === null ? 'never (within the run)' : `after ${(balancedAt - added).toFixed(1)} s`) +
      ` (at the end: ${endNew} connections, mean ${endMean.toFixed(1)}).`,
  );
  console.log(
    `${killed.name} killed at ${killed.at.toFixed(1)} s: ${failedOnKilled} requests failed on it: ` +
      `${failedOnKilled - failedSentAfterKill} of the ${killed.inFlightClients} in flight on it when it died, ` +
      `${failedSentAfterKill} sent to it after it died, before their client saw the connection close` +
      (failedSentAfterKill ? ` (all within ${lastSentAfterKill.toFixed(1)} ms of the kill)` : '') +
      `; ${failedElsewhere} failed otherwise.`,
  );
  console.log(
    `Rovers reported ${killed.name} unreachable ${unreachable} times in ${(CONFIG.WINDOW[1] - killed.at).toFixed(0)} s ` +
      `(${CONFIG.CLIENTS} rovers retrying it whenever picked: expected about ` +
      `${Math.round((CONFIG.CLIENTS * (1000 / CONFIG.ROVING_INTERVAL) * (CONFIG.WINDOW[1] - killed.at)) / servers.filter((s) => s.joined).length)}).`,
  );
  console.log(
    `Requests: ${ok} answered, ${totalFailed} failed, ${noConnection} found no idle connection; ` +
      `pool/rover errors: ${errors.length}${errors.length ? ` (${[...new Set(errors.map((e) => e.code))].join(', ')})` : ''}.`,
  );
  return {
    ...result,
    balancedAfter: balancedAt === null ? null : balancedAt - added,
    failedOnKilled,
    failedElsewhere,
    killed,
  };
}

async function phaseRandom() {
  console.log('');
  console.log(
    `Phase 2: the same load, each client's ${CONFIG.MAX_SLOTS} connections assigned to servers at random (no rover), ${CONFIG.SERVERS} servers.`,
  );
  const servers = [];
  for (let i = 1; i <= CONFIG.SERVERS; i++) servers.push(await startServer(`r${i}`));
  const known = {};
  for (const s of servers) known[s.name] = s.server.address;
  const seed = seededRandom(CONFIG.SEED + 1);
  let windowLatencies = null;
  const clients = [];
  for (let i = 0; i < CONFIG.CLIENTS; i++) {
    const client = new FleetClient({
      MAX_SLOTS: CONFIG.MAX_SLOTS,
      onResult: (r) => {
        if (r.ok && windowLatencies) windowLatencies.push(r.latency);
      },
    });
    await client.connectRandom(known, CONFIG.MAX_SLOTS, seed);
    clients.push(client);
  }
  const start = elapsed();
  const load = new Load(clients, CONFIG.RATE, seededRandom(Math.floor(seed() * 2 ** 32)));
  load.start();
  const table = new Table(servers);
  table.header();
  let window = null;
  let nextRow = Math.floor(start) + 1;
  while (elapsed() - start < CONFIG.RANDOM_WARMUP + CONFIG.RANDOM_WINDOW) {
    await sleep(100);
    if (window === null && elapsed() - start >= CONFIG.RANDOM_WARMUP) {
      windowLatencies = [];
      window = new Window(servers, windowLatencies);
    }
    if (elapsed() >= nextRow) {
      table.row();
      nextRow = Math.floor(elapsed()) + 1;
    }
  }
  const result = window.finish();
  windowLatencies = null;
  load.stop();
  await Promise.all(clients.map((c) => c.close()));
  for (const s of servers) await s.server.close();
  return result;
}

function line(name, r) {
  return (
    `balance ${name} connections max/mean ${r.connections.toFixed(2)}, requests max/mean ${r.requests.toFixed(2)}, ` +
    `p99 latency ${Math.round(r.p99)} ms`
  );
}

async function main() {
  const callosum = await phaseCallosum();
  const random = await phaseRandom();
  await sleep(100);
  // Left: stdio (TTYWrap or PipeWrap) and the unref()ed watchdog (Timeout).
  const left = process.getActiveResourcesInfo().filter((r) => !['TTYWrap', 'PipeWrap', 'Timeout'].includes(r));
  console.log('');
  console.log(
    `Cleaned up: ${left.length === 0 ? 'no socket or server left open' : `left open: ${left.join(', ')}`}. ` +
      `Total ${elapsed().toFixed(1)} s.`,
  );
  console.log(line('callosum:', callosum));
  console.log(line('random:  ', random));
}

const watchdog = setTimeout(() => {
  console.error('demo: still running after 58 s, giving up');
  process.exit(1);
}, 58000);
watchdog.unref();

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
