'use strict';

// npm run soak [-- --seconds 300 --seed 42 ...]: a chaos soak of the pool.
// Real Callosum servers on loopback (soak/chaos-server.js) that reset,
// half-close, close, stall, die and come back, and send bad, split and
// trailing slot lines, and flood idle connections or send them bursts below
// the pools' bound on held bytes, on a seeded schedule (soak/chaos.js); many clients on
// rove() under a request load through getConnection and acquire, with misuse
// (soak/load.js, soak/misuse.js); invariants checked all along
// (soak/invariants.js); a summary at the end (soak/report.js). Exits 1 on any
// violation. See soak/README.md.

const { parseArgs } = require('node:util');
const os = require('node:os');
const { performance } = require('node:perf_hooks');
const path = require('node:path');
const dc = require('node:diagnostics_channel');
const { getDefaultHighWaterMark } = require('node:stream');
const { seededRandom } = require('../examples/seeded-random.js');
const { ChaosServer, Registry } = require('./chaos-server.js');
const { RATES, makeSchedule, runSchedule } = require('./chaos.js');
const { Violations, Tracker, safeMessage, ONE_READ } = require('./invariants.js');
const { Misuse } = require('./misuse.js');
const { SoakClient, sleep } = require('./load.js');
const { Counters, Sampler, summary, openFds } = require('./report.js');

const PRESETS = {
  full: { seconds: 300, servers: 6, clients: 24, workers: 6 },
  short: { seconds: 35, servers: 4, clients: 12, workers: 6 },
};

function options() {
  const { values } = parseArgs({
    options: {
      short: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      servers: { type: 'string' },
      clients: { type: 'string' },
      workers: { type: 'string' },
      'max-slots': { type: 'string', default: '6' },
      interval: { type: 'string', default: '150' },
      chaos: { type: 'string', default: '1' },
      'misuse-rate': { type: 'string', default: '100' },
      'paused-share': { type: 'string', default: '0.25' },
      'acquire-share': { type: 'string', default: '0.5' },
      'light-share': { type: 'string', default: '0.33' },
      'lease-share': { type: 'string', default: '0.2' },
      'abort-share': { type: 'string', default: '0.2' },
      'double-return-rate': { type: 'string', default: '0.003' },
      'client-destroy-rate': { type: 'string', default: '0.002' },
      'client-end-rate': { type: 'string', default: '0.001' },
      'request-timeout': { type: 'string', default: '3000' },
      without: { type: 'string', default: '' },
      'small-held': { type: 'string', default: '4096' },
      'small-held-share': { type: 'string', default: '0.5' },
      'ab-margin-mb': { type: 'string', default: '4' },
      'adaptive-share': { type: 'string', default: '0.34' },
      'probes-share': { type: 'string', default: '0.5' },
      package: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'node soak/index.js [--short] [--seconds N] [--seed N] [--servers N] [--clients N] [--workers N]\n' +
        '  [--max-slots N] [--interval MS] [--chaos SCALE] [--misuse-rate PER_S] [--paused-share P]\n' +
        '  [--acquire-share P] [--light-share P] [--lease-share P] [--abort-share P] [--double-return-rate P] [--client-destroy-rate P] [--client-end-rate P]\n' +
        '  [--request-timeout MS] [--without KIND,...] [--small-held BYTES] [--small-held-share P] [--ab-margin-mb MB]\n' +
        '  [--adaptive-share P] [--probes-share P]\n' +
        '  [--package DIR] [--quiet]        (env: SOAK_SECONDS, SOAK_SEED, SOAK_PACKAGE)',
    );
    process.exit(0);
  }
  const preset = values.short ? PRESETS.short : PRESETS.full;
  const num = (v, fallback) => {
    if (v === undefined || v === '') return fallback;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new Error(`not a number: ${v}`);
    return x;
  };
  const opts = {
    seconds: num(values.seconds ?? process.env.SOAK_SECONDS, preset.seconds),
    servers: num(values.servers, preset.servers),
    clients: num(values.clients, preset.clients),
    workers: num(values.workers, preset.workers),
    maxSlots: num(values['max-slots']),
    interval: num(values.interval),
    chaos: num(values.chaos),
    misuseRate: num(values['misuse-rate']),
    pausedShare: num(values['paused-share']),
    acquireShare: num(values['acquire-share']),
    lightShare: num(values['light-share']),
    leaseShare: num(values['lease-share']),
    abortShare: num(values['abort-share']),
    doubleReturnRate: num(values['double-return-rate']),
    clientDestroyRate: num(values['client-destroy-rate']),
    clientEndRate: num(values['client-end-rate']),
    requestTimeout: num(values['request-timeout']),
    // A share of the pools get maxHeldBytes = smallHeld (the rest the default).
    smallHeld: num(values['small-held']),
    smallHeldShare: Math.min(1, num(values['small-held-share'])),
    // ArrayBuffers of the soak's own, on top of what the pools may hold.
    abMargin: num(values['ab-margin-mb']) * 1048576,
    // A share of the pools adaptive (E6), and of those, a share whose rover
    // probes two servers a tick.
    adaptiveShare: Math.min(1, num(values['adaptive-share'])),
    probesShare: Math.min(1, num(values['probes-share'])),
    quiet: values.quiet,
    // Faults left out: schedule kinds (chaos.js RATES), late-banner, client-end.
    without: new Set(
      values.without
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== ''),
    ),
    // Another build of the package (e.g. an older commit) to soak instead.
    package: path.resolve(__dirname, '..', values.package ?? process.env.SOAK_PACKAGE ?? '.'),
  };
  for (const k of opts.without) {
    if (!(k in RATES) && k !== 'late-banner' && k !== 'client-end') throw new Error(`--without: unknown fault ${k}`);
  }
  if (opts.without.has('client-end')) opts.clientEndRate = 0;
  const seedText = values.seed ?? process.env.SOAK_SEED;
  const seed = seedText === undefined ? (Date.now() ^ (process.pid << 16)) >>> 0 : num(seedText) >>> 0;
  return { opts, seed };
}

async function main() {
  const { opts, seed } = options();
  const CallosumClient = require(opts.package);
  // A package with the bound on held bytes (issue 18) takes maxHeldBytes and
  // reports heldBytes; an older one is soaked without those checks.
  try {
    const probe = new CallosumClient({ MAX_SLOTS: 1, maxHeldBytes: 4096 });
    opts.heldSupported = typeof probe.stats().heldBytes === 'number';
    probe.close();
  } catch {
    opts.heldSupported = false;
  }
  // A package with adaptive balancing (E6, issue 20) takes adaptive: true,
  // says so in client.adaptive and shows client.servers(); an older one is
  // soaked with every pool as specified.
  try {
    const probe = new CallosumClient({ MAX_SLOTS: 1, adaptive: true });
    opts.adaptiveSupported = probe.adaptive === true && typeof probe.servers === 'function';
    probe.close();
  } catch {
    opts.adaptiveSupported = false;
  }
  if (!opts.adaptiveSupported) opts.adaptiveShare = 0;
  {
    // Which pools are adaptive, and which of those probe twice (load.js).
    const pick = (i, share) => Math.floor((i + 1) * share) > Math.floor(i * share);
    let adaptive = 0;
    let probes2 = 0;
    for (let i = 0; i < opts.clients; i++) {
      if (!pick(i, opts.adaptiveShare)) continue;
      if (pick(adaptive, opts.probesShare)) probes2++;
      adaptive++;
    }
    opts.adaptiveProfile = opts.adaptiveSupported
      ? `${adaptive} of ${opts.clients} pools adaptive (${probes2} of them with probes: 2), the rest as specified; server s0 slowed now and then${opts.without.has('slow') ? ' (left out: --without slow)' : ''}`
      : 'the package has no adaptive mode: every pool as specified';
  }
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const log = (msg) => process.stderr.write(`${msg}\n`);
  const violations = new Violations({ now, log });
  const counters = new Counters();
  const faults = {}; // by kind, counted where they take effect
  const registry = new Registry();
  const tracker = new Tracker({ violations, counters, now, registry, deadKeptMs: 1000, halfOpenMs: 5000 });
  const sampler = new Sampler();
  const onDropped = (msg) => tracker.onDropped(msg);
  dc.subscribe('callosum:pool:dropped', onDropped);
  const onRefused = (msg) => tracker.onRefused(msg);
  dc.subscribe('callosum:pool:refused', onRefused);
  const load = { start: os.loadavg(), end: null };

  // Nothing uncaught: a throw from a pool method in an I/O callback, an
  // unheard 'error', a rejection nobody handles.
  process.on('uncaughtException', (err) => violations.add('uncaught-exception', safeMessage(err)));
  process.on('unhandledRejection', (err) => violations.add('unhandled-rejection', safeMessage(err)));
  process.on('warning', (w) => {
    if (w.name === 'MaxListenersExceededWarning') violations.add('listener-leak', w.message);
    else counters.add('warning', `${w.name}${w.code ? ` ${w.code}` : ''}`);
  });

  sampler.begin();
  const fdsBefore = openFds();
  log(
    `callosum soak of ${opts.package}: seed ${seed} (replay: --seed ${seed}), ${opts.seconds} s, ${opts.servers} servers, ${opts.clients} clients, load average ${load.start.map((x) => x.toFixed(2)).join(' ')}`,
  );
  log(`adaptive: ${opts.adaptiveProfile}`);

  // Servers.
  const servers = [];
  for (let i = 0; i < opts.servers; i++) {
    const server = new ChaosServer({ name: `s${i}`, registry, counters: faults, now });
    server.on('error', (err) => violations.add('server-error', `${server.name}: ${safeMessage(err)}`));
    server.on('server-close', (rec) => tracker.onServerClose(rec));
    await server.listen();
    servers.push(server);
  }
  const addresses = {};
  for (const s of servers) addresses[s.name] = { host: s.host, port: s.port };

  // Clients.
  const clients = [];
  for (let i = 0; i < opts.clients; i++) {
    clients.push(
      new SoakClient({
        index: i,
        CallosumClient,
        servers: addresses,
        opts,
        tracker,
        violations,
        counters,
        seed: (seed + 1 + i * 7919) >>> 0,
      }),
    );
  }
  for (const c of clients) c.start();
  // The ceiling of the process's ArrayBuffer memory: what each pool may hold
  // (per slot: maxHeldBytes held, plus what the socket's stream buffers before
  // backpressure, readableHighWaterMark and one read), plus the soak's own.
  const hwm = getDefaultHighWaterMark(false);
  let formula = 0;
  // (A package without the bound is held to the default it would have, 64 KiB.)
  for (const c of clients) formula += c.client.MAX_SLOTS * ((c.maxHeldBytes ?? 65536) + hwm + ONE_READ);
  tracker.arrayBuffers.formula = formula;
  tracker.arrayBuffers.margin = opts.abMargin;
  tracker.arrayBuffers.hwm = hwm;
  tracker.arrayBuffers.ceiling = formula + opts.abMargin;
  // Bursts stay below three quarters of the smallest bound.
  const minHeld = Math.min(...clients.map((c) => c.maxHeldBytes ?? (opts.smallHeldShare > 0 ? opts.smallHeld : 65536)));
  const burstBudget = Math.floor(minHeld * 0.75);
  opts.heldProfile = opts.heldSupported
    ? `maxHeldBytes ${opts.smallHeld} for ${clients.filter((c) => c.smallHeld).length} pools, ${clients.find((c) => !c.smallHeld)?.maxHeldBytes ?? '-'} (default) for ${clients.filter((c) => !c.smallHeld).length}; bursts within ${burstBudget} bytes between requests`
    : 'the package has no maxHeldBytes: heldBytes checks skipped, arrayBuffers held to the 64 KiB default';
  const floods = [];
  const bursts = [];
  const light = clients.filter((c) => c.light);
  opts.profile = `${clients.length - light.length} busy clients x ${opts.workers} workers, ${light.length} light (1-2 workers, thinking)`;

  // Chaos: from 2 s (pools filled) to 3 s before the end (delayed closes finish).
  const durationMs = opts.seconds * 1000;
  const schedule = makeSchedule({
    seed,
    servers: servers.length,
    fromMs: 2000,
    toMs: Math.max(2000, durationMs - 3000),
    scale: opts.chaos,
    without: opts.without,
  });
  // A fingerprint of the schedule, so two runs can be seen to replay the same one.
  let hash = 0x811c9dc5;
  for (const ev of schedule) {
    for (const ch of JSON.stringify(ev)) hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  }
  opts.scheduleSummary = `${schedule.length} events, fingerprint ${hash.toString(16).padStart(8, '0')}`;
  log(`chaos schedule: ${opts.scheduleSummary}`);
  const restarts = new Set();
  let ending = false;
  const chaos = runSchedule({
    schedule,
    servers,
    seed,
    counters: faults,
    startedAt: 0,
    now,
    burstBudget,
    onFlood(kind, rec) {
      // How the client held the connection when the fault began.
      const s = rec.clientSocket;
      const state =
        s === undefined
          ? 'not kept by a pool'
          : s.destroyed || s._destroyed === true
            ? 'dropped already'
            : s._leased === true || tracker.isHeld(s)
              ? 'lent'
              : `idle (${s.readableFlowing === true ? 'flowing' : 'paused'})`;
      if (kind === 'flood') {
        rec.flood.startState = state;
        floods.push(rec);
      } else {
        rec.burst.startState = state;
        bursts.push(rec);
      }
    },
    onKill(server, ev) {
      server.kill(ev.how).then(() => {
        if (ending) return;
        const t = setTimeout(() => {
          restarts.delete(t);
          if (!ending)
            server
              .restart()
              .catch((err) => violations.add('server-error', `${server.name} restart: ${safeMessage(err)}`));
        }, ev.downMs);
        restarts.add(t);
      });
    },
  });

  // Misuse, spread over the run.
  const misuse = new Misuse({ tracker, violations, random: seededRandom(seed ^ 0xbad) });
  const misusePending = new Set();
  let misuseDebt = 0;
  const misuseTimer = setInterval(() => {
    misuseDebt += opts.misuseRate * 0.02;
    for (; misuseDebt >= 1; misuseDebt--) {
      const sc = clients[Math.floor(misuse.random() * clients.length)];
      if (misuse.random() < 0.1) {
        const p = misuse.acquire(sc);
        misusePending.add(p);
        p.finally(() => misusePending.delete(p));
      } else {
        misuse.once(sc, clients);
      }
    }
  }, 20);

  // Checks every 250 ms; samples every second; progress every 10 s.
  let lastSample = 0;
  let lastProgress = 0;
  const scanTimer = setInterval(() => {
    tracker.scan(clients, servers);
    const t = now();
    if (t - lastSample < 1000) return;
    lastSample = t;
    registry.sweep(t, 10000);
    const s = sampler.sample();
    if (opts.quiet || t - lastProgress < 10000 - 250) return;
    lastProgress = t;
    const ok = counters.get('get', 'ok') + counters.get('acquire', 'ok') + counters.get('lease', 'ok');
    log(
      `t=${(t / 1000).toFixed(0)}s requests ${ok.toLocaleString('en-US')}, violations ${violations.total}, heap ${(s.heapUsed / 1048576).toFixed(1)} MB, fds ${s.fds}, connections ${servers.map((x) => x.connections).join('/')}`,
    );
  }, 250);

  await sleep(durationMs / 2);
  sampler.middle();
  await sleep(durationMs / 2);

  // Wind down: no more chaos, no more load.
  ending = true;
  chaos.stop();
  clearInterval(misuseTimer);
  for (const t of restarts) clearTimeout(t);
  for (const c of clients) c.stopping = true;
  for (const s of servers) s.unstall();
  const stopped = await Promise.race([
    Promise.all(clients.map((c) => c.stop())).then(() => true),
    sleep(opts.requestTimeout + 2000).then(() => false),
  ]);
  if (!stopped) violations.add('workers-stuck', 'workers did not stop within the request timeout');
  await Promise.race([Promise.all(misusePending), sleep(1000)]);
  // Long enough for a dead socket still kept to be flagged.
  await sleep(1500);
  clearInterval(scanTimer);
  tracker.scan(clients, servers);
  // The checks of idle and dead sockets rest on seeing the kept ones.
  if (tracker.kept === 0 || tracker.untracked > tracker.kept / 100) {
    violations.add(
      'tracking-lost',
      `the soak saw ${tracker.kept} kept sockets (${tracker.untracked} with no server record): does rove() still offer through client.newConnection?`,
    );
  }
  // Every drop for flooding the pools counted was published.
  const countedFlooded = clients.reduce(
    (t, c) => t + (typeof c.client.counters === 'function' ? (c.client.counters().droppedFlooded ?? 0) : 0),
    0,
  );
  if (countedFlooded !== tracker.droppedFlooded) {
    violations.add(
      'flooded-count-mismatch',
      `the pools count ${countedFlooded} drops as flooded, the dropped channel published ${tracker.droppedFlooded}`,
    );
  }
  tracker.countedFlooded = countedFlooded;
  if (tracker.holders.size !== 0)
    violations.add('holders-left', `${tracker.holders.size} sockets still held after the workers stopped`);
  // What the adaptive pools counted as leases, per server, before they close.
  if (opts.adaptiveSupported) {
    tracker.adaptive.leasesReported = clients
      .filter((c) => c.adaptive)
      .reduce((t, c) => t + c.client.servers().reduce((u, row) => u + row.leases, 0), 0);
  }

  // Nothing left open: close every pool, then every server must see zero connections.
  for (const s of servers) s.calm();
  // close() returns a promise of the lent sockets' return in newer versions:
  // nothing is lent now, so it must settle at once and well.
  const closing = clients.map((c) =>
    Promise.resolve(c.close()).then(
      () => true,
      (err) => {
        violations.add('close-rejected', `client ${c.index}: close() rejected: ${safeMessage(err)}`);
        return true;
      },
    ),
  );
  if (!(await Promise.race([Promise.all(closing), sleep(2000).then(() => false)]))) {
    violations.add('close-unsettled', 'close() of a pool with nothing lent did not settle within 2 s');
  }
  for (const c of clients) {
    if (c.client.slotCount !== 0)
      violations.add(
        'slots-after-close',
        `client ${c.index}: slotCount ${c.client.slotCount} after close() with nothing lent`,
      );
  }
  const deadline = now() + 3000;
  while (servers.some((s) => s.connections > 0) && now() < deadline) await sleep(20);
  for (const s of servers) {
    for (const rec of s.records) {
      violations.add(
        'server-connections-left',
        `server ${s.name} conn ${rec.id} (slot ${rec.slot}, ${rec.closedHow ? `server end: ${rec.closedHow}` : 'open'}, plan ${rec.plan ? rec.plan.kind : 'none'}) still open 3 s after every client closed`,
      );
    }
  }
  for (const s of servers) await s.shutdown();
  registry.byKey.clear(); // the soak's own records, not the pool's memory
  await sleep(300);
  const tcp = process.getActiveResourcesInfo().filter((r) => /TCP/.test(r));
  if (tcp.length > 0) violations.add('handles-left', `active after shutdown: ${tcp.join(', ')}`);
  sampler.finish();
  load.end = os.loadavg();
  if (fdsBefore !== null && sampler.end.fds > fdsBefore + 2) {
    violations.add(
      'fds-left',
      `${sampler.end.fds} descriptors open at the end, ${fdsBefore} before the servers started`,
    );
  }

  dc.unsubscribe('callosum:pool:dropped', onDropped);
  dc.unsubscribe('callosum:pool:refused', onRefused);
  console.log(
    summary({
      opts,
      seed,
      elapsedMs: now(),
      counters,
      faults,
      violations,
      tracker,
      misuse,
      sampler,
      servers,
      load,
      floods,
      bursts,
    }),
  );
  const warnings = counters.entries('warning');
  if (warnings.length > 0) console.log(`process warnings: ${warnings.map(([k, v]) => `${k} x${v}`).join(', ')}`);
  process.exitCode = violations.total === 0 ? 0 : 1;
  // Unref'd rover timers are gone with the pools; exit now rather than wait
  // for stray short timers.
  setImmediate(() => process.exit());
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
