'use strict';

// Which pools the bench compares, and how each is built: the package itself if
// it loads (a missing addon prints n/a instead of stopping the bench), the
// model of the original, the plain-JS floors and generic-pool.

const Original = require('../__test__/fixtures/original-0.1.5-model.js');
const Floor = require('./floor.js');
const ChurnFloor = require('./churn-floor.js');
const WaitingFloor = require('./waiting-floor.js');
const { SELECTED } = require('./config.js');

function loadNative() {
  try {
    const Native = require('..');
    if (typeof Native !== 'function') return { error: "require('..') is not a constructor" };
    const probe = new Native({ MAX_SLOTS: 2 });
    for (const m of ['newConnection', 'getConnection', 'returnConnection']) {
      if (typeof probe[m] !== 'function') return { error: `no ${m}()` };
    }
    probe.on('error', () => {});
    const hasAcquire = typeof probe.acquire === 'function';
    if (typeof probe.close === 'function') probe.close();
    return { Native, hasAcquire, adaptiveError: probeAdaptive(Native) };
  } catch (err) {
    return { error: `require('..') failed: ${String(err?.message).split('\n')[0]}` };
  }
}

// Whether the package has the adaptive mode (issue 20, SPEC E6): an older one
// ignores or refuses the option; the adaptive rows then print n/a.
function probeAdaptive(Native) {
  try {
    const probe = new Native({ MAX_SLOTS: 2, adaptive: true });
    if (typeof probe.on === 'function') probe.on('error', () => {});
    const on = probe.adaptive === true;
    if (typeof probe.close === 'function') probe.close();
    return on ? null : 'no adaptive option';
  } catch (err) {
    return `no adaptive option (${String(err?.message).split('\n')[0]})`;
  }
}

let genericPool = null;
try {
  genericPool = require('generic-pool');
} catch {
  genericPool = null;
}

const native =
  !SELECTED || SELECTED.has('native') || SELECTED.has('native-adaptive') ? loadNative() : { error: 'not selected' };

const IMPLS = {
  native: { label: 'native (this package)', available: !native.error, reason: native.error },
  // the same package with { adaptive: true }: its rows sit in the native column
  'native-adaptive': {
    label: 'native, adaptive: true',
    available: !native.error && !native.adaptiveError,
    reason: native.error || native.adaptiveError,
  },
  original: { label: 'original 0.1.5 (model)', available: true },
  floor: { label: 'plain-JS floor', available: true },
  'churn-floor': { label: 'plain-JS churn floor', available: true },
  'generic-pool': {
    label: 'generic-pool 3.9.0',
    available: !!genericPool,
    reason: genericPool ? undefined : 'generic-pool not installed',
  },
  'waiting-floor': { label: 'JS waiting floor', available: true },
};
if (SELECTED) {
  for (const [name, impl] of Object.entries(IMPLS)) {
    if (!SELECTED.has(name)) Object.assign(impl, { available: false, reason: 'not selected' });
  }
}

function syncCtor(name) {
  if (name === 'native' || name === 'native-adaptive') return native.Native;
  if (name === 'original') return Original;
  if (name === 'floor') return Floor;
  if (name === 'churn-floor') return ChurnFloor;
  throw new Error(name);
}

function newPool(name, maxSlots) {
  const options = name === 'native-adaptive' ? { MAX_SLOTS: maxSlots, adaptive: true } : { MAX_SLOTS: maxSlots };
  const pool = new (syncCtor(name))(options);
  if (typeof pool.on === 'function') pool.on('error', onPoolError);
  return pool;
}

// 'error' events the pools emitted during the run (printed at the end: the
// bench feeds no bad input, so any is worth a look)
let poolErrors = 0;
function onPoolError() {
  poolErrors++;
}
const poolErrorCount = () => poolErrors;

module.exports = { native, genericPool, IMPLS, newPool, WaitingFloor, poolErrorCount };
