'use strict';

// The results of the rounds, and the two ways the report reads them: the
// median of one implementation's rounds, and the median of the per-round
// ratios of two (pairs measured close together, which cancels the drift).

const results = {}; // workload id -> { title, unit, impls: { name: { rounds: [], error? } } }
function record(id, title, unit, name, value, error) {
  if (!results[id]) results[id] = { title, unit, impls: {} };
  const slot = results[id].impls[name] || (results[id].impls[name] = { rounds: [] });
  if (error) slot.error = error;
  else if (value !== undefined) slot.rounds.push(value);
}

function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// rows in a fixed order, whatever runs first
const ROW_ORDER = [
  'getreturn-100',
  'getreturn-100-adaptive',
  'getreturn-10000',
  'getreturn-100000',
  'burst-100',
  'burst-100-adaptive',
  'burst-10000',
  'burst-100000',
  'churn',
  'churn-isolated',
  'acquire-idle',
  'acquire-contended',
];
function orderedIds() {
  return [...ROW_ORDER.filter((id) => results[id]), ...Object.keys(results).filter((id) => !ROW_ORDER.includes(id))];
}

function med(id, name) {
  const e = results[id]?.impls[name];
  return e ? median(e.rounds) : null;
}

function rounds(id, name) {
  const e = results[id]?.impls[name];
  return e && !e.error && e.rounds.length ? e.rounds : null;
}

// a / b: the median of the per-round ratios when both were measured in every
// round (each pair measured close together in time, which cancels the
// machine's drift), else the ratio of the medians
function pairedRatio(idA, a, idB, b) {
  const ra = rounds(idA, a);
  const rb = rounds(idB, b);
  if (!ra || !rb) return null;
  if (ra.length === rb.length) return median(ra.map((x, i) => x / rb[i]));
  return median(ra) / median(rb);
}

// a - b: the median of the per-round differences (the adaptive rows against
// the plain ones, measured next to each other in every round), null unless
// both have every round
function pairedDifference(idA, a, idB, b) {
  const ra = rounds(idA, a);
  const rb = rounds(idB, b);
  if (!ra || !rb || ra.length !== rb.length) return null;
  return median(ra.map((x, i) => x - rb[i]));
}

module.exports = { results, record, median, orderedIds, med, pairedRatio, pairedDifference, rounds };
