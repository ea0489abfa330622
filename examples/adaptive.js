'use strict';

/*
 * npm run demo:adaptive: one slow server in a loopback fleet, and what the
 * pool as specified and the adaptive pool (E6: `adaptive: true`, rover
 * `probes: 2`) make of it, side by side.
 *
 * SERVERS Callosum servers, one of them SLOW_FACTOR times slower (each works
 * on at most WORKERS requests at a time, DELAY ms each; the rest queue), and
 * CLIENTS clients, each a pool fed by its rover, sending a Poisson stream of
 * requests that together make LOAD of the fleet's capacity. A request waits
 * for a connection with acquire() (as a service under load would), writes
 * `<id>\n`, reads `ok <id>\n`, and gives the connection back. Latency is
 * measured from the request's arrival, so time spent waiting for a
 * connection counts.
 *
 * The same fleet and the same seeded load run three times: the pools as
 * specified (lowest slot lent, one server a tick), the same with rover
 * `probes: 2`, then adaptive with `probes: 2`. Each run warms up for WARMUP s
 * and is measured for WINDOW s. Real sockets and timers: figures vary a
 * little from run to run; the seed fixes every random choice.
 */

const { performance } = require('node:perf_hooks');
const CallosumClient = require('..');
const { CallosumServer } = require('../__test__/fixtures/callosum-server.js');
const { seededRandom } = require('./seeded-random.js');

const CONFIG = {
  SERVERS: 5,
  SLOW_FACTOR: 2, // the slow server's work takes this many times longer
  CLIENTS: 20,
  MAX_SLOTS: 8,
  ROVING_INTERVAL: 100, // ms
  DELAY: 10, // ms of work per request on a normal server
  WORKERS: 4, // requests worked on at once per server
  LOAD: 0.8, // of the fleet's capacity
  WARMUP: 4, // s
  WINDOW: 8, // s
  SEED: 20261206,
};
for (const key of Object.keys(CONFIG)) {
  const v = process.env[`DEMO_${key}`];
  if (v !== undefined && Number.isFinite(Number(v))) CONFIG[key] = Number(v);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** One client: a pool, its rover, and the request protocol on lent sockets. */
class Client {
  constructor(options, servers, random) {
    this.pool = new CallosumClient({ MAX_SLOTS: CONFIG.MAX_SLOTS, adaptive: options.adaptive });
    this.pool.on('error', () => {});
    this.pool.on('unreachable', () => {});
    this.rover = this.pool.rove(servers, { ROVING_INTERVAL: CONFIG.ROVING_INTERVAL, probes: options.probes, random });
    this.readers = new WeakMap();
    this.nextId = 0;
  }

  /** Resolves with the request's outcome: { ok, port }. */
  async request() {
    let socket;
    try {
      socket = await this.pool.acquire({ timeout: 5000 });
    } catch {
      return { ok: false, port: 0 };
    }
    let reader = this.readers.get(socket);
    if (reader === undefined) reader = this.attach(socket);
    const id = ++this.nextId;
    const port = socket.remotePort;
    const ok = await new Promise((resolve) => {
      reader.pending = { id, resolve };
      socket.write(`${id}\n`);
    });
    if (ok) this.pool.returnConnection(socket);
    return { ok, port };
  }

  attach(socket) {
    const reader = { buffer: '', pending: null };
    this.readers.set(socket, reader);
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (text) => {
      reader.buffer += text;
      let nl = reader.buffer.indexOf('\n');
      while (nl !== -1) {
        const line = reader.buffer.slice(0, nl);
        reader.buffer = reader.buffer.slice(nl + 1);
        const req = reader.pending;
        if (req !== null && line === `ok ${req.id}`) {
          reader.pending = null;
          req.resolve(true);
        }
        nl = reader.buffer.indexOf('\n');
      }
    });
    const gone = () => {
      const req = reader.pending;
      reader.pending = null;
      req?.resolve(false);
    };
    socket.on('error', gone);
    socket.on('close', gone);
    return reader;
  }
}

/** Runs the fleet once with `options` ({ adaptive, probes }); returns its figures. */
async function run(options) {
  const random = seededRandom(CONFIG.SEED);
  const servers = [];
  const addresses = {};
  for (let i = 0; i < CONFIG.SERVERS; i++) {
    const slow = i === 0;
    const server = new CallosumServer({
      delay: CONFIG.DELAY * (slow ? CONFIG.SLOW_FACTOR : 1),
      workers: CONFIG.WORKERS,
    });
    const { host, port } = await server.listen();
    servers.push({ name: slow ? 's1 (slow)' : `s${i + 1}`, server, port });
    addresses[`s${i + 1}`] = { host, port };
  }
  const clients = [];
  for (let i = 0; i < CONFIG.CLIENTS; i++) clients.push(new Client(options, addresses, seededRandom(CONFIG.SEED + i)));
  const capacity = ((CONFIG.WORKERS * 1000) / CONFIG.DELAY) * (CONFIG.SERVERS - 1 + 1 / CONFIG.SLOW_FACTOR);
  const rate = (CONFIG.LOAD * capacity) / CONFIG.CLIENTS; // per client, per second
  await sleep(1000); // the rovers fill the pools

  const latencies = [];
  const byPort = new Map();
  let failed = 0;
  let measuring = false;
  let stopping = false;
  const pending = new Set();
  const start = performance.now();
  const warmEnd = start + CONFIG.WARMUP * 1000;
  const end = warmEnd + CONFIG.WINDOW * 1000;
  const next = clients.map(() => start - Math.log(1 - random()) * (1000 / rate));
  const ticker = setInterval(() => {
    const now = performance.now();
    measuring = now >= warmEnd && now < end;
    if (now >= end) stopping = true;
    if (stopping) return;
    for (let i = 0; i < clients.length; i++) {
      while (next[i] <= now) {
        const arrival = next[i];
        const counted = arrival >= warmEnd;
        next[i] += -Math.log(1 - random()) * (1000 / rate);
        const p = clients[i].request().then(({ ok, port }) => {
          pending.delete(p);
          if (!counted || !measuring) return;
          if (!ok) failed++;
          latencies.push(performance.now() - arrival);
          byPort.set(port, (byPort.get(port) ?? 0) + 1);
        });
        pending.add(p);
      }
    }
  }, 2);
  while (!stopping) await sleep(100);
  clearInterval(ticker);
  await Promise.all(pending);
  const held = clients[0].pool.servers?.() ?? [];
  for (const c of clients) await c.pool.close({ timeout: 1000 }).catch(() => {});
  for (const s of servers) await s.server.close();

  latencies.sort((a, b) => a - b);
  const total = latencies.length;
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    total,
    failed,
    share: servers.map((s) => ({ name: s.name, share: (byPort.get(s.port) ?? 0) / Math.max(1, total) })),
    held,
  };
}

function fmt(n, digits = 1) {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

async function main() {
  const capacity = ((CONFIG.WORKERS * 1000) / CONFIG.DELAY) * (CONFIG.SERVERS - 1 + 1 / CONFIG.SLOW_FACTOR);
  console.log(
    `${CONFIG.SERVERS} servers on loopback, s1 ${CONFIG.SLOW_FACTOR}x slower; ${CONFIG.CLIENTS} clients, ` +
      `MAX_SLOTS ${CONFIG.MAX_SLOTS}, roving every ${CONFIG.ROVING_INTERVAL} ms; load ${Math.round(CONFIG.LOAD * 100)}% ` +
      `of ${Math.round(capacity)} requests/s; measured ${CONFIG.WINDOW} s after ${CONFIG.WARMUP} s of warm-up.\n`,
  );
  // The pool as specified; the same with two probes a tick (what the rover
  // alone adds); adaptive with two probes (what the ranking adds on top).
  const runs = [
    ['as specified', await run({ adaptive: false, probes: 1 })],
    ['probes 2', await run({ adaptive: false, probes: 2 })],
    ['adaptive, probes 2', await run({ adaptive: true, probes: 2 })],
  ];
  const adaptive = runs[2][1];
  const rows = [
    ['', ...runs.map(([name]) => name)],
    ['p50 latency (ms)', ...runs.map(([, r]) => fmt(r.p50))],
    ['p99 latency (ms)', ...runs.map(([, r]) => fmt(r.p99))],
    ['requests measured', ...runs.map(([, r]) => String(r.total))],
    ['requests failed', ...runs.map(([, r]) => String(r.failed))],
  ];
  for (let i = 0; i < adaptive.share.length; i++) {
    rows.push([`share of ${adaptive.share[i].name}`, ...runs.map(([, r]) => `${fmt(r.share[i].share * 100)}%`)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) {
    console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
  }
  if (adaptive.held.length !== 0) {
    console.log("\nOne adaptive client's view at the end (client.servers()):");
    for (const s of adaptive.held) {
      console.log(
        `  ${String(s.server).padEnd(4)} held ${s.held}, leases ${s.leases}, ` +
          `estimate ${fmt(s.estimateMs, 2)} ms, weight ${fmt(s.weight, 2)}`,
      );
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
