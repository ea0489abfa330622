'use strict';

// Counting, sampling (heap, descriptors, event loop delay) and the summary.

const fs = require('node:fs');
const os = require('node:os');
const { monitorEventLoopDelay } = require('node:perf_hooks');

// Start and end heap samples are taken after a full gc: npm run soak passes
// --expose-gc; without it, expose it at run time.
if (typeof global.gc !== 'function') {
  try {
    require('node:v8').setFlagsFromString('--expose-gc');
    global.gc = require('node:vm').runInNewContext('gc');
  } catch {
    // heap samples without gc
  }
}

// Counts by group and key: counters.add('get', 'ok').
class Counters {
  constructor() {
    this.groups = new Map();
  }

  add(group, key, n = 1) {
    let g = this.groups.get(group);
    if (g === undefined) {
      g = new Map();
      this.groups.set(group, g);
    }
    g.set(key, (g.get(key) || 0) + n);
  }

  get(group, key) {
    const g = this.groups.get(group);
    return g?.get(key) || 0;
  }

  total(group) {
    let t = 0;
    for (const n of (this.groups.get(group) || new Map()).values()) t += n;
    return t;
  }

  entries(group) {
    return [...(this.groups.get(group) || new Map())].sort((a, b) => b[1] - a[1]);
  }
}

function openFds() {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return null; // not Linux
  }
}

// Heap and descriptors at start, peak and end; event loop delay.
class Sampler {
  constructor() {
    this.start = null;
    this.mid = null;
    this.peak = { heapUsed: 0, rss: 0, fds: 0 };
    this.end = null;
    this.loop = monitorEventLoopDelay({ resolution: 10 });
  }

  sample() {
    const m = process.memoryUsage();
    const s = { heapUsed: m.heapUsed, rss: m.rss, fds: openFds() };
    if (s.heapUsed > this.peak.heapUsed) this.peak.heapUsed = s.heapUsed;
    if (s.rss > this.peak.rss) this.peak.rss = s.rss;
    if (s.fds !== null && s.fds > this.peak.fds) this.peak.fds = s.fds;
    return s;
  }

  begin() {
    if (global.gc) global.gc();
    this.start = this.sample();
    this.loop.enable();
  }

  // Half way, after a gc: the end should not be above it by much, whatever
  // the start (module code, pools filled) was.
  middle() {
    if (global.gc) global.gc();
    this.mid = this.sample();
  }

  finish() {
    this.loop.disable();
    if (global.gc) global.gc();
    this.end = this.sample();
  }
}

const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
const n = (x) => x.toLocaleString('en-US');

function table(rows, indent = '  ') {
  if (rows.length === 0) return `${indent}(none)`;
  const width = Math.max(...rows.map((r) => String(r[0]).length));
  return rows.map(([k, v]) => `${indent}${String(k).padEnd(width)}  ${typeof v === 'number' ? n(v) : v}`).join('\n');
}

// Floods and bursts (issue 18): how many, what they hit, how they ended,
// and the bounds checked against them.
function floodSection({ opts, tracker, counters, floods, bursts }) {
  const lines = [];
  const push = (x) => lines.push(x);
  const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
  const tally = (items, key) => {
    const m = new Map();
    for (const it of items) m.set(key(it), (m.get(key(it)) || 0) + 1);
    return [...m].sort((a, b) => b[1] - a[1]);
  };
  push(`flooding servers (${opts.heldProfile}):`);
  const streamed = floods.reduce((t, r) => t + r.flood.bytes, 0);
  push(`  floods started: ${n(floods.length)}, ${mb(streamed)} written by the servers`);
  push('    target when it began:');
  push(
    table(
      tally(floods, (r) => r.flood.startState),
      '      ',
    ),
  );
  push('    how it ended:');
  push(
    table(
      tally(floods, (r) => r.flood.how ?? 'still running at the end'),
      '      ',
    ),
  );
  const ttd = [...tracker.floodTimeToDrop].sort((a, b) => a - b);
  if (ttd.length > 0)
    push(
      `    flood start to the pool's drop: median ${ttd[Math.floor(ttd.length / 2)].toFixed(0)} ms, max ${ttd[ttd.length - 1].toFixed(0)} ms`,
    );
  push(
    `  sockets dropped as 'flooded' (dropped channel): ${n(tracker.droppedFlooded)} (${n(tracker.droppedFloodedFlood)} on flooded connections); pools' counters().droppedFlooded: ${tracker.countedFlooded === undefined ? 'n/a' : n(tracker.countedFlooded)}; offers refused as 'flooded': ${n(tracker.refusedFlooded)}`,
  );
  push(table(counters.entries('flood'), '    '));
  const bytes = bursts.reduce((t, r) => t + r.burst.bytes, 0);
  push(
    `  burst connections: ${n(bursts.length)}; bursts sent ${n(bursts.reduce((t, r) => t + r.burst.sent, 0))} (${n(bursts.reduce((t, r) => t + r.burst.lines, 0))} lines, ${kb(bytes)}), held back for the budget ${n(bursts.reduce((t, r) => t + r.burst.skipped, 0))}`,
  );
  push('    target when it began:');
  push(
    table(
      tally(bursts, (r) => r.burst.startState),
      '      ',
    ),
  );
  push(table(counters.entries('burst'), '    '));
  const hp = tracker.heldPeak;
  push(
    tracker.heldSupported
      ? `  peak heldBytes of one pool: ${n(hp.bytes)} (client ${hp.client}, bound slotCount x maxHeldBytes ${n(hp.bound)}, maxHeldBytes ${n(hp.maxHeldBytes ?? 0)}); all pools together: peak ${n(tracker.heldSumPeak)}`
      : '  heldBytes: not reported by this package',
  );
  const sb = tracker.socketBufferPeak;
  push(
    `  peak unread bytes of one kept socket: ${n(sb.bytes)} (its bound maxHeldBytes + readableHighWaterMark + 64 KiB: ${n(sb.bound)})`,
  );
  const ab = tracker.arrayBuffers;
  push(
    `  arrayBuffers: ceiling ${mb(ab.ceiling)} (${mb(ab.formula)} = sum of MAX_SLOTS x (maxHeldBytes + ${n(ab.hwm ?? 0)} + 65536) + ${mb(ab.margin)} margin); peak ${mb(ab.peakRaw)} raw, ${mb(ab.periodicGcPeak)} after a gc (every 5 s), ${mb(ab.peakAfterGc)} after any gc (${n(ab.gcChecks)} gcs when a raw sample was over the ceiling)`,
  );
  return lines;
}

// Adaptive pools (E6, issue 20): leases, how often the order left the
// lowest slot, and what servers() showed on scans.
function adaptiveSection({ opts, tracker, counters, servers }) {
  const lines = [];
  const push = (x) => lines.push(x);
  push(`adaptive pools: ${opts.adaptiveProfile}`);
  if (!opts.adaptiveSupported) return lines;
  const a = tracker.adaptive;
  const w = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
  const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : 'n/a');
  const slow = servers.reduce((t, s) => t + s.slowAnswers, 0);
  push(
    `  leases by adaptive pools: ${n(counters.get('adaptive', 'leases by adaptive pools'))}, ${n(counters.get('adaptive', 'leases that waited (handed to a waiter)'))} of them handed to a waiter (their servers() leases at the end: ${a.leasesReported === null ? 'n/a' : n(a.leasesReported)}: a return handed to a waiter is not counted there); of ${n(counters.get('adaptive', 'lease checks'))} checked, ${n(counters.get('adaptive', 'leases of a higher slot than the lowest idle one'))} lent a higher slot than the lowest idle one`,
  );
  push(
    `  servers() checked on ${n(a.scans)} scans, ${n(a.rows)} rows (at most ${a.rowsPeak} in one pool): weight min ${w(a.weightMin)}, max ${w(a.weightMax)}, ${n(a.rowsNotOne)} rows not at 1; estimate min ${ms(a.estimateMin)}, max ${ms(a.estimateMax)}`,
  );
  const rows = [...a.byServer].sort((x, y) => (x[0] < y[0] ? -1 : 1));
  push(
    table(
      rows.map(([key, b]) => [
        key,
        `weight min ${w(b.weightMin)}, mean ${w(b.weightSum / b.rows)}, max ${w(b.weightMax)}; estimate max ${ms(b.estimateMax)}`,
      ]),
      '    ',
    ),
  );
  push(`  answers the slowed server sent late: ${n(slow)}`);
  return lines;
}

function summary({
  opts,
  seed,
  elapsedMs,
  counters,
  faults,
  violations,
  tracker,
  misuse,
  sampler,
  servers,
  load,
  floods = [],
  bursts = [],
}) {
  const lines = [];
  const push = (s) => lines.push(s);
  const secs = elapsedMs / 1000;
  const apis = ['get', 'acquire', 'lease'].filter((api) => counters.total(api) > 0);
  const okTotal = apis.reduce((t, api) => t + counters.get(api, 'ok'), 0);
  push('');
  push(`callosum soak of ${opts.package}`);
  push(
    `seed ${seed} (chaos schedule: ${opts.scheduleSummary}), ${secs.toFixed(1)} s, ${opts.servers} servers, ${opts.profile}, MAX_SLOTS ${opts.maxSlots}, ROVING_INTERVAL ${opts.interval} ms, chaos x${opts.chaos}${opts.without.size > 0 ? ` without ${[...opts.without].join(', ')}` : ''}`,
  );
  push(
    `load average: start ${load.start.map((x) => x.toFixed(2)).join(' ')}, end ${load.end.map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} cores)`,
  );
  push('');
  push(`requests answered: ${n(okTotal)} (${n(Math.round(okTotal / secs))}/s)`);
  for (const api of apis) {
    const label = {
      get: 'getConnection/returnConnection',
      acquire: 'acquire({ timeout })/returnConnection',
      lease: 'lease({ timeout })/release',
    }[api];
    push(`  ${label}:`);
    push(table(counters.entries(api), '    '));
  }
  push(
    `  lowest-idle checks: ${n(tracker.lowestChecks)}; sockets kept: ${n(tracker.kept)} (${tracker.untracked} with no server record)`,
  );
  push('');
  push('faults injected:');
  const faultRows = [...Object.entries(faults).sort((a, b) => b[1] - a[1]), ...counters.entries('fault')];
  push(table(faultRows));
  push(
    `  connections accepted by the servers: ${n(servers.reduce((t, s) => t + s.accepted, 0))}; rover unreachable events: ${n(counters.get('rover', 'unreachable'))}`,
  );
  push('  exposure (how often the faults looked for were set up):');
  push(table(counters.entries('exposure'), '    '));
  push('');
  for (const l of floodSection({ opts, tracker, counters, floods, bursts })) push(l);
  push('');
  for (const l of adaptiveSection({ opts, tracker, counters, servers })) push(l);
  push('');
  push(`misuse calls: ${n(misuse.total + counters.total('misuse'))}`);
  push(table([...misuse.calls].sort((a, b) => b[1] - a[1]).concat(counters.entries('misuse'))));
  push('');
  push('errors by code (client error events and acquire rejections):');
  push(table([...tracker.errorsByCode].sort((a, b) => b[1] - a[1])));
  push('');
  push(`violations: ${violations.total}`);
  for (const [kind, v] of [...violations.byKind].sort((a, b) => b[1].count - a[1].count)) {
    push(`  ${kind}: ${n(v.count)}`);
    for (const [cause, c] of [...v.causes].sort((a, b) => b[1] - a[1])) push(`      ${n(c)} x ${cause}`);
    for (const e of v.examples) push(`    e.g. ${e}`);
  }
  push('');
  const s = sampler;
  const fds = (x) => (x === null ? 'n/a' : String(x));
  const mid = s.mid === null ? '' : `, half way ${mb(s.mid.heapUsed)}`;
  push(
    `heap used: start ${mb(s.start.heapUsed)}${mid}, peak ${mb(s.peak.heapUsed)}, end ${mb(s.end.heapUsed)}${global.gc ? ' (all but the peak after a gc)' : ''}`,
  );
  push(`rss:       start ${mb(s.start.rss)}, peak ${mb(s.peak.rss)}, end ${mb(s.end.rss)}`);
  push(
    `open fds:  start ${fds(s.start.fds)}, peak ${fds(s.peak.fds)}, end ${fds(s.end.fds)} (libuv keeps one /dev/null open once a server listened)`,
  );
  push(
    `event loop delay: p50 ${(s.loop.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(s.loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(s.loop.max / 1e6).toFixed(1)} ms`,
  );
  push('');
  push(
    violations.total === 0
      ? 'PASS: no violation'
      : `FAIL: ${violations.total} violations (replay the chaos schedule with --seed ${seed})`,
  );
  return lines.join('\n');
}

module.exports = { Counters, Sampler, summary, openFds };
