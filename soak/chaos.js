'use strict';

// The chaos schedule: every fault, its time, its server and its parameters,
// drawn in advance from the seed, so a seed replays the same schedule (which
// connection a fault hits depends on what is live then, drawn from a second
// seeded stream at fire time).

const { seededRandom } = require('../examples/seeded-random.js');

// Faults per second over the whole fleet, at scale 1.
const RATES = {
  reset: 1.0, // a live connection reset (RST)
  'half-close': 0.7, // the server end()s a live connection and keeps reading
  close: 0.7, // the server destroys a live connection (FIN)
  goodbye: 0.5, // the server sends a last line on a live connection, then closes it 0-50 ms later
  'trailing-close': 1.0, // next 3-15 connections: `#hi <id>\n` after the slot line (at once or a little later), closed later
  trailing: 0.3, // next connection: bytes after the slot line, never closed by the server
  'split-line': 2.0, // next connection: slot line in 2-3 writes a few ms apart
  'bad-line': 0.5, // next connection: a garbage slot line
  silent: 0.1, // next connection: no slot line at all (handshake timeout)
  'early-close': 0.2, // next connection: closed before the slot line is whole
  stall: 0.2, // a server stops answering for a while
  kill: 0.08, // a server killed (all connections closed) and restarted later
  // Last, so that the draws of the kinds above (and a run --without these) stay as they were.
  flood: 0.4, // a settled connection (most often one quiet for 500 ms) streamed to without end: 64 KiB chunks as fast as it drains
  burst: 0.6, // a settled connection gets 200-1500 byte bursts every 50-400 ms for 2-10 s, below the bound
  // Last (issue 20), for the same reason: server s0 answers every request
  // 5-40 ms late for 2-10 s, so that adaptive pools' weights move.
  slow: 0.06,
};

// Slot lines the rover must refuse (ERR_CALLOSUM_BAD_SLOT_LINE).
const BAD_LINES = [
  'x1\r\n',
  '\r\n',
  '-1\r\n',
  ' 3\r\n',
  '1\rX',
  '123456789012345678901\r\n',
  '99999999999999999\r\n',
  'hello\r\n',
  '4\n',
  '\x00\r\n',
  '1 2\r\n',
];

function exponential(random, rate) {
  return -Math.log(1 - random()) / rate;
}

/**
 * A sorted list of { at (ms from start), kind, server (index), ...params }
 * between `fromMs` and `toMs`.
 */
function makeSchedule({ seed, servers, fromMs, toMs, scale, without = new Set() }) {
  const random = seededRandom(seed ^ 0x5eed);
  const events = [];
  for (const kind of Object.keys(RATES)) {
    const rate = RATES[kind] * scale;
    if (!(rate > 0)) continue;
    let t = fromMs;
    for (;;) {
      t += exponential(random, rate) * 1000;
      if (t >= toMs) break;
      // Drawn even when left out, so the rest of the schedule stays the same.
      const ev = { at: Math.round(t), kind, server: Math.floor(random() * servers), ...params(kind, random) };
      // One server is the slow one, so that its weight can be told apart.
      if (kind === 'slow') ev.server = 0;
      if (without.has(kind)) continue;
      if (ev.lateMs > 0 && without.has('late-banner')) ev.lateMs = 0;
      events.push(ev);
    }
  }
  events.sort((a, b) => a.at - b.at || (a.kind < b.kind ? -1 : 1));
  return events;
}

function between(random, lo, hi) {
  return lo + Math.floor(random() * (hi - lo + 1));
}

function params(kind, random) {
  switch (kind) {
    case 'trailing-close': {
      const r = random();
      // Several connections in a row (a server that greets with a banner for
      // a while): most are refused by full pools, a few are kept.
      // A third send the banner 5-50 ms after the slot line: it reaches a
      // socket already handed to the pool.
      return {
        count: between(random, 3, 15),
        closeAfterMs: between(random, 200, 3000),
        how: r < 0.4 ? 'end' : r < 0.8 ? 'destroy' : 'reset',
        oneWrite: random() < 0.5,
        lateMs: random() < 0.33 ? between(random, 5, 50) : 0,
      };
    }
    case 'trailing':
      return { oneWrite: random() < 0.5 };
    case 'split-line':
      return { cuts: random() < 0.5 ? [random()] : [random(), random()], gapMs: between(random, 1, 20) };
    case 'bad-line':
      return { text: BAD_LINES[Math.floor(random() * BAD_LINES.length)] };
    case 'early-close': {
      const r = random();
      return { partial: r < 0.5 ? '1' : '', afterMs: between(random, 0, 30), how: random() < 0.5 ? 'destroy' : 'end' };
    }
    case 'goodbye':
      return { afterMs: between(random, 0, 50), how: random() < 0.5 ? 'end' : 'destroy' };
    case 'stall':
      return { ms: between(random, 200, 1500) };
    case 'flood':
      // Most prefer a connection that sent no request for 500 ms (idle in
      // its pool, most likely); the rest take any.
      return { quietMs: random() < 0.75 ? 500 : 0 };
    case 'burst':
      return {
        durationMs: between(random, 2000, 10000),
        gapMs: between(random, 50, 400),
        quietMs: random() < 0.5 ? 500 : 0,
      };
    case 'kill':
      return { downMs: between(random, 300, 3000), how: random() < 0.5 ? 'fin' : 'reset' };
    case 'slow':
      return { delayMs: between(random, 5, 40), durationMs: between(random, 2000, 10000) };
    default:
      return {};
  }
}

// Kinds that shape the next accepted connection of a server.
const PLANS = new Set(['trailing-close', 'trailing', 'split-line', 'bad-line', 'silent', 'early-close']);

/**
 * Runs a schedule against `servers` (ChaosServer[]). Returns { stop() }.
 * `counters` gets the faults that hit something ('<kind>' for live
 * connections, stalls and kills; plans count themselves when a connection
 * takes them), and '<kind> (missed)' for a fault with no live target.
 */
function runSchedule({
  schedule,
  servers,
  seed,
  counters,
  startedAt,
  now,
  onKill,
  onFlood = () => {},
  burstBudget = 3072,
}) {
  const random = seededRandom(seed ^ 0xc4a05);
  // Floods and bursts draw from their own stream: the targets of the other
  // faults stay as they were without them.
  const random2 = seededRandom(seed ^ 0xf100d);
  let i = 0;
  let timer = null;
  let stopped = false;
  const count = (k) => {
    counters[k] = (counters[k] || 0) + 1;
  };

  function fire(ev) {
    const server = servers[ev.server];
    if (PLANS.has(ev.kind)) {
      server.plans.push(ev);
      return;
    }
    switch (ev.kind) {
      case 'reset':
      case 'half-close':
      case 'close':
      case 'goodbye':
        // The chosen server first, then any other with a live connection.
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(ev.server + k) % servers.length];
          if (s.up && s.hit(ev.kind, random, ev)) {
            count(ev.kind);
            return;
          }
        }
        count(`${ev.kind} (missed)`);
        return;
      case 'flood':
      case 'burst':
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(ev.server + k) % servers.length];
          if (!s.up) continue;
          const rec = ev.kind === 'flood' ? s.flood(random2, ev.quietMs) : s.burst(random2, ev, burstBudget);
          if (rec !== null) {
            count(ev.kind);
            onFlood(ev.kind, rec);
            return;
          }
        }
        count(`${ev.kind} (missed)`);
        return;
      case 'stall':
        if (!server.up) {
          count('stall (missed)');
          return;
        }
        server.stall(ev.ms);
        count('stall');
        return;
      case 'slow':
        // Down or not: a server restarted within the slowdown is slow too.
        server.slow(ev.delayMs, ev.durationMs);
        count('slow');
        return;
      case 'kill':
        if (!server.up) {
          count('kill (missed)');
          return;
        }
        count(`kill (${ev.how})`);
        onKill(server, ev);
        return;
      default:
        throw new Error(`unknown fault ${ev.kind}`);
    }
  }

  function next() {
    timer = null;
    if (stopped) return;
    const t = now() - startedAt;
    while (i < schedule.length && schedule[i].at <= t) fire(schedule[i++]);
    if (i < schedule.length) timer = setTimeout(next, Math.max(1, schedule[i].at - (now() - startedAt)));
  }
  next();
  return {
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
    },
  };
}

module.exports = { RATES, BAD_LINES, makeSchedule, runSchedule };
