'use strict';

// What a run prints and writes: the table, the churn mix, the targets with
// their ratios, the load indicators, results.json and the get+return chart.

const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { getReturnChart } = require('./chart.js');
const { ROUNDS, SCALE, ONLY, OUT, DOCS_SVG, SELECTED, CONFIG, wants } = require('./config.js');
const { IMPLS, native, poolErrorCount } = require('./implementations.js');
const { gc, cpuShare } = require('./timing.js');
const { results, median, orderedIds, med, pairedRatio, pairedDifference, rounds } = require('./results.js');

function fmt(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

function pad(s, n, left = false) {
  s = String(s);
  return left ? s.padStart(n) : s.padEnd(n);
}

function printTable(memory) {
  const cols = ['native', 'original', 'floor', 'generic-pool', 'waiting-floor'];
  const w0 = 50;
  const w1 = 11;
  const wc = 14;
  const lines = [];
  lines.push(
    pad(`workload (median of ${ROUNDS} rounds)`, w0) + pad('unit', w1) + cols.map((c) => pad(c, wc, true)).join(''),
  );
  lines.push('-'.repeat(w0 + w1 + wc * cols.length));
  for (const id of orderedIds()) {
    const r = results[id];
    const cells = cols.map((c) => {
      // the floor column holds the floor of the row's work: the churn floor for churn
      const e = r.impls[c] || (c === 'floor' ? r.impls['churn-floor'] : undefined);
      if (!e) return pad('', wc, true);
      const med = median(e.rounds);
      if (med === null) return pad('n/a', wc, true);
      const spread = e.rounds.length > 1 ? (100 * (Math.max(...e.rounds) - Math.min(...e.rounds))) / med : 0;
      return pad(`${fmt(med)} ±${spread.toFixed(0)}%`, wc, true);
    });
    lines.push(pad(r.title, w0) + pad(r.unit, w1) + cells.join(''));
  }
  if (memory) {
    const row = (title, unit, f) =>
      lines.push(
        pad(title, w0) +
          pad(unit, w1) +
          cols.map((c) => pad(memory[c] ? (memory[c].error ? 'n/a' : f(memory[c])) : '', wc, true)).join(''),
      );
    const n = CONFIG.memory.cycles.toLocaleString('en-US');
    row(`memory: ${n} get+return, pool ${CONFIG.memory.poolSize}`, 'B/cycle', (m) => m.bytesPerCycle.toFixed(3));
    row('  heap growth (after full GC)', 'MB', (m) => (m.heapBytes / 1e6).toFixed(2));
    row('  external growth', 'MB', (m) => (m.externalBytes / 1e6).toFixed(2));
    row('  RSS growth', 'MB', (m) => (m.rssBytes / 1e6).toFixed(1));
    row('  time per cycle over the whole run', 'ns/cycle', (m) => fmt(m.nsPerCycle));
  }
  console.log(lines.join('\n'));
  const notes = new Map(); // "name: reason" -> workloads
  const note = (name, reason, what) => {
    const key = `${name}: n/a (${reason})`;
    if (!notes.has(key)) notes.set(key, []);
    notes.get(key).push(what);
  };
  for (const id of orderedIds()) {
    for (const [name, e] of Object.entries(results[id].impls)) {
      if (e.error && !['no displacement', 'no slots'].includes(e.error)) note(name, e.error, results[id].title);
    }
  }
  if (memory) for (const [name, m] of Object.entries(memory)) if (m.error) note(name, m.error, 'memory');
  if (notes.size) {
    console.log('\nnot measured:');
    for (const [key, what] of notes) console.log(`  ${key}: ${what.join('; ')}`);
  }
}

// untimed replay of the churn script: what each pool did with the offers
function printChurnMix(churnMixes) {
  if (!churnMixes) return;
  console.log(
    `\nchurn script: ${CONFIG.churn.steps.toLocaleString('en-US')} steps (${CONFIG.churn.mix}), offered slots uniform in [0, ${CONFIG.churn.slotRange}), MAX_SLOTS ${CONFIG.churn.maxSlots}; what each pool did with the offers:`,
  );
  for (const [name, mix] of Object.entries(churnMixes)) {
    console.log(
      `  ${pad(name, 11)} ${mix.error ? `n/a (${mix.error})` : `kept ${mix.kept}, kept displacing the highest ${mix.keptAfterDisplacing}, refused ${mix.refused}; lent ${mix.lent}, returned ${mix.returned}, died while leased ${mix.died}; slotCount at end ${mix.finalSlotCount}`}`,
    );
  }
}

function computeTargets(memory) {
  const t = [];
  const adaptiveRefs = [];
  const add = (target, measured, goal, op, note) => {
    const pass = measured === null ? null : op === '>=' ? measured >= goal : measured <= goal;
    t.push({ target, measured, goal: `${op} ${goal}`, status: pass === null ? 'n/a' : pass ? 'met' : 'MISSED', note });
  };
  for (const [prefix, what] of [
    ['getreturn', 'get+return'],
    ['burst', `bursts of ${CONFIG.burst.burst}`],
  ]) {
    for (const size of CONFIG.getReturn.sizes) {
      const id = `${prefix}-${size}`;
      if (!results[id]) continue;
      const s = size.toLocaleString('en-US');
      add(`#4 ${what} ${s}: original / native (x faster)`, pairedRatio(id, 'original', id, 'native'), 4, '>=');
      add(`#4 ${what} ${s}: native / floor (x slower)`, pairedRatio(id, 'native', id, 'floor'), 2.5, '<=');
    }
    if (results[`${prefix}-100000`] && results[`${prefix}-100`]) {
      add(
        `#4 ${what}, log growth: native 100,000 / native 100`,
        pairedRatio(`${prefix}-100000`, 'native', `${prefix}-100`, 'native'),
        2,
        '<=',
      );
    }
  }
  // issue 20: what adaptive: true adds to a get+return, in ns, as the median
  // of the per-round differences (on - off) of the pairs measured side by side
  for (const [prefix, what] of [
    ['getreturn', 'get+return'],
    ['burst', `bursts of ${CONFIG.burst.burst}`],
  ]) {
    for (const size of CONFIG.adaptive.sizes) {
      const id = `${prefix}-${size}`;
      if (!results[id]) continue;
      const on = rounds(`${id}-adaptive`, 'native');
      const off = rounds(id, 'native');
      const detail = {
        offNs: med(id, 'native'),
        onNs: med(`${id}-adaptive`, 'native'),
        differencesNs: on && off && on.length === off.length ? on.map((x, i) => x - off[i]) : null,
      };
      const diff = pairedDifference(`${id}-adaptive`, 'native', id, 'native');
      if (prefix === 'getreturn') {
        add(
          `#20 adaptive ${what} ${size.toLocaleString('en-US')}: on - off (ns, median of paired rounds)`,
          diff,
          CONFIG.adaptive.budgetNs,
          '<=',
          detail,
        );
      } else {
        adaptiveRefs.push({
          what: `adaptive ${what} ${size.toLocaleString('en-US')}: on - off (ns, median of paired rounds)`,
          value: diff,
          detail,
        });
      }
    }
  }
  add('#4 churn: original / native (x faster)', pairedRatio('churn', 'original', 'churn', 'native'), 3, '>=');
  // issue 14 on the isolated row: in one process the shared EventEmitter code
  // goes polymorphic and hides most of the gap to the floor (bench/README.md)
  add(
    '#14 churn, own worker each: native / churn floor (x slower)',
    pairedRatio('churn-isolated', 'native', 'churn-isolated', 'churn-floor'),
    1.25,
    '<=',
  );
  add(
    '#14 churn, own worker each: original / native (x faster)',
    pairedRatio('churn-isolated', 'original', 'churn-isolated', 'native'),
    2,
    '>=',
  );
  const mem = memory?.native && !memory.native.error ? memory.native.bytesPerCycle : null;
  add(
    `#4 memory: native bytes per cycle over ${CONFIG.memory.cycles.toLocaleString('en-US')} cycles`,
    mem,
    0.1,
    '<=',
    'heap+external growth after full GC; 0.1 B/cycle = 1 MB per 10M cycles',
  );
  add(
    '#5 acquire idle: generic-pool / native (x throughput)',
    pairedRatio('acquire-idle', 'generic-pool', 'acquire-idle', 'native'),
    3,
    '>=',
  );
  add(
    '#5 acquire idle: native / waiting floor (x time)',
    pairedRatio('acquire-idle', 'native', 'acquire-idle', 'waiting-floor'),
    1.5,
    '<=',
  );
  add(
    '#5 contended: generic-pool / native (x throughput)',
    pairedRatio('acquire-contended', 'generic-pool', 'acquire-contended', 'native'),
    1.5,
    '>=',
  );
  add(
    '#5 contended: native / waiting floor (x time)',
    pairedRatio('acquire-contended', 'native', 'acquire-contended', 'waiting-floor'),
    1.5,
    '<=',
  );
  // references, no target
  const refs = [...adaptiveRefs];
  for (const size of CONFIG.getReturn.sizes) {
    const id = `getreturn-${size}`;
    const s = size.toLocaleString('en-US');
    refs.push({ what: `get+return ${s}: original / floor`, value: pairedRatio(id, 'original', id, 'floor') });
    refs.push({ what: `get+return ${s}: generic-pool / native`, value: pairedRatio(id, 'generic-pool', id, 'native') });
    refs.push({
      what: `bursts of ${CONFIG.burst.burst} ${s}: original / floor`,
      value: pairedRatio(`burst-${size}`, 'original', `burst-${size}`, 'floor'),
    });
  }
  refs.push({
    what: 'get+return, log growth: floor 100,000 / floor 100',
    value: pairedRatio('getreturn-100000', 'floor', 'getreturn-100', 'floor'),
  });
  refs.push({
    what: 'get+return, log growth: original 100,000 / original 100',
    value: pairedRatio('getreturn-100000', 'original', 'getreturn-100', 'original'),
  });
  refs.push({
    what: 'churn, one process: native / churn floor',
    value: pairedRatio('churn', 'native', 'churn', 'churn-floor'),
  });
  refs.push({
    what: 'churn, one process: original / churn floor',
    value: pairedRatio('churn', 'original', 'churn', 'churn-floor'),
  });
  refs.push({
    what: 'churn, own worker each: original / churn floor',
    value: pairedRatio('churn-isolated', 'original', 'churn-isolated', 'churn-floor'),
  });
  refs.push({
    what: 'acquire idle: generic-pool / waiting floor',
    value: pairedRatio('acquire-idle', 'generic-pool', 'acquire-idle', 'waiting-floor'),
  });
  refs.push({
    what: 'contended: generic-pool / waiting floor',
    value: pairedRatio('acquire-contended', 'generic-pool', 'acquire-contended', 'waiting-floor'),
  });
  return { targets: t, references: refs };
}

function printTargets({ targets, references }) {
  const lines = [
    '',
    'targets (issues 4, 5, 14 and 20): ratios are medians of the per-round ratios, differences medians of the per-round differences (pairs measured in the same round):',
  ];
  // the adaptive lines: the two medians and every round's difference
  const detail = (d) =>
    d && typeof d === 'object'
      ? `    off ${fmt(d.offNs)} ns, on ${fmt(d.onNs)} ns (medians); on - off by round: ${d.differencesNs ? d.differencesNs.map((x) => x.toFixed(1)).join(', ') : 'n/a'}`
      : null;
  for (const x of targets) {
    lines.push(
      `  ${pad(x.target, 72)} ${pad(x.measured === null ? 'n/a' : x.measured.toFixed(2), 8, true)}  goal ${pad(x.goal, 7)}  ${x.status}`,
    );
    if (detail(x.note)) lines.push(detail(x.note));
  }
  lines.push('references:');
  for (const r of references) {
    lines.push(`  ${pad(r.what, 72)} ${pad(r.value === null ? 'n/a' : r.value.toFixed(2), 8, true)}`);
    if (detail(r.detail)) lines.push(detail(r.detail));
  }
  console.log(lines.join('\n'));
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0] ? cpus[0].model : 'unknown',
    cores: cpus.length,
    memoryGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    napi: process.versions.napi,
    gcExposed: !!gc,
    loadAverageAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  };
}

// The load indicators: the CPU share of the timed regions, the pools' error
// events, the load average at both ends (stored in info). Returns the share.
function printLoad(info, elapsed) {
  const share = cpuShare.wallMs > 0 ? cpuShare.cpuMs / cpuShare.wallMs : null;
  if (share !== null) {
    console.log(
      `\nprocess CPU time / wall time in the timed regions: ${(100 * share).toFixed(0)}% (about 100% when the bench has a core to itself; GC helper threads can add a little)`,
    );
  }
  if (poolErrorCount()) console.log(`\nnote: the pools emitted ${poolErrorCount()} 'error' events during the run`);
  info.loadAverageAtEnd = os.loadavg().map((x) => +x.toFixed(2));
  console.log(
    `\ntotal ${elapsed.toFixed(0)} s; load average (1, 5, 15 min) at start ${info.loadAverageAtStart.join(', ')}, at end ${info.loadAverageAtEnd.join(', ')} (${info.cores} cores)`,
  );
  return share;
}

// results.json (every round of every row) and the chart (docs/ copy only from
// a full-scale run of everything, so a smoke run never replaces it)
function writeOutputs({ info, elapsed, churnMixes, memory, targets, share }) {
  const summary = {};
  for (const id of orderedIds()) {
    const r = results[id];
    summary[id] = { title: r.title, unit: r.unit, impls: {} };
    for (const [name, e] of Object.entries(r.impls)) {
      summary[id].impls[name] = e.error
        ? { median: null, error: e.error }
        : { median: median(e.rounds), rounds: e.rounds };
    }
  }
  const out = {
    date: new Date().toISOString(),
    elapsedSeconds: elapsed,
    machine: info,
    config: CONFIG,
    implementations: Object.fromEntries(
      Object.entries(IMPLS).map(([k, v]) => [k, { label: v.label, available: v.available, reason: v.reason }]),
    ),
    nativeHasAcquire: !!native.hasAcquire,
    workloads: summary,
    churnMix: churnMixes,
    memory,
    ...targets,
    poolErrors: poolErrorCount(),
    cpuShareOfTimedRegions: share,
  };
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'results.json'), `${JSON.stringify(out, null, 2)}\n`);

  if (wants('getreturn') || wants('burst')) {
    const series = [];
    if (wants('getreturn')) {
      for (const name of ['native', 'original', 'floor', 'generic-pool']) {
        series.push({
          name,
          label: IMPLS[name].label,
          points: CONFIG.getReturn.sizes.map((size) => ({ size, ns: med(`getreturn-${size}`, name) })),
        });
      }
    }
    if (wants('burst')) {
      for (const name of ['native', 'original', 'floor']) {
        series.push({
          name,
          dash: true,
          label: `${name}, bursts of ${CONFIG.burst.burst}`,
          points: CONFIG.getReturn.sizes.map((size) => ({ size, ns: med(`burst-${size}`, name) })),
        });
      }
    }
    const svg = getReturnChart(series, {
      title: `callosum-client-tcp: ns per get + return (median of ${ROUNDS} rounds, lower is better)`,
      subtitle: `${info.cpu}, ${info.cores} cores, Node ${info.node}; generic-pool is async acquire/release; dashed: ${CONFIG.burst.burst} gets, then ${CONFIG.burst.burst} returns`,
    });
    fs.writeFileSync(path.join(OUT, 'get-return.svg'), svg);
    if (!process.env.BENCH_NO_DOCS && SCALE === 1 && !ONLY && !SELECTED) {
      fs.mkdirSync(path.dirname(DOCS_SVG), { recursive: true });
      fs.writeFileSync(DOCS_SVG, svg);
    }
  }
  console.log(
    `wrote ${path.relative(process.cwd(), path.join(OUT, 'results.json'))}${wants('getreturn') || wants('burst') ? ' and get-return.svg' : ''}`,
  );
}

module.exports = { machine, printTable, printChurnMix, computeTargets, printTargets, printLoad, writeOutputs };
