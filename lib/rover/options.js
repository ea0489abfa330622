'use strict';

// What lib/validators.js does not have yet for the rover: the `probes` option
// (issue 20) and the injected `lookup`, which are not in its
// ROVER_OPTION_KEYS, and the check of `probes`. Kept in this one file so that
// no other file of lib/rover/ checks anything itself; when validators.js has
// them (the keys in ROVER_OPTION_KEYS, validateProbes beside validateMs),
// this file goes.

const { errors } = require('../errors.js');
const V = require('../validators.js');

/** Every option `new Rover()` reads: `client.rove()`'s list, the two above, and `servers`. */
const ROVER_KEYS = Object.freeze([...new Set([...V.ROVER_OPTION_KEYS, 'probes', 'lookup', 'servers'])]);

/**
 * `probes`: servers tried per tick, a positive safe integer; undefined means `fallback`.
 * @param {unknown} value
 * @param {string} name e.g. 'options.probes'
 * @param {number} fallback
 * @returns {number}
 */
function validateProbes(value, name, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw errors.ERR_INVALID_ARG_TYPE(name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw errors.ERR_OUT_OF_RANGE(name, 'a positive safe integer', value);
  }
  return value;
}

module.exports = { ROVER_KEYS, validateProbes };
