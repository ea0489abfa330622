'use strict';

// Every argument check of the package, in Node's style (lib/internal/validators.js):
// `validateX(value, name)` throws a coded error from the registry (lib/errors.js)
// naming `name`, or returns the value to use (the default, for an option that
// means "default" when absent). `isX(value)` predicates are for the pool's own
// methods, which report bad input as 'error' events instead of throwing (they
// are called from I/O callbacks). No check runs a Proxy trap or lets a throwing
// getter escape as anything but a coded error.

const { types } = require('node:util');
const { errors } = require('./errors.js');

/** The longest delay setTimeout/setInterval honour (Node turns longer ones into 1 ms). */
const TIMEOUT_MAX = 2 ** 31 - 1;

/** MAX_SLOTS when the option is absent or falsy, as in the original. */
const DEFAULT_MAX_SLOTS = 100;
// Bytes held for one idle socket before it is dropped as flooded: a banner is
// tens of bytes, a late reply a few KiB; 64 KiB is that with a wide margin,
// and one socket read (README, "Memory").
const DEFAULT_MAX_HELD_BYTES = 64 * 1024;

/** The options `new CallosumClient()` reads. */
const CLIENT_OPTION_KEYS = Object.freeze(['MAX_SLOTS', 'maxWaiting', 'maxHeldBytes', 'adaptive']);
/**
 * The options `new Rover()` reads besides `servers`, and the ones `client.rove(servers, options)`
 * passes on to it: one list, so the two cannot drift.
 */
const ROVER_OPTION_KEYS = Object.freeze([
  'ROVING_INTERVAL',
  'connectTimeout',
  'handshakeTimeout',
  'backOffUnreachable',
  'maxBackoff',
  'random',
  'now',
  'connect',
  'lookup',
  'probes',
]);

/**
 * Reads `keys` of an options object into a plain one, so that a Proxy or a
 * getter that throws becomes a coded error (ERR_INVALID_ARG_TYPE, the throw
 * as its cause) instead of an uncoded throw from deep inside a check.
 * Returns {} for undefined and null.
 * @param {unknown} value
 * @param {string} name how messages name it, e.g. 'CallosumClient: options'
 * @param {readonly string[]} keys
 * @returns {Record<string, any>}
 */
function readOptions(value, name, keys) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object') throw errors.ERR_INVALID_ARG_TYPE(name, 'an object', value);
  /** @type {Record<string, any>} */
  const out = {};
  try {
    for (const key of keys) out[key] = /** @type {any} */ (value)[key];
  } catch (err) {
    throw errors.ERR_INVALID_ARG_TYPE(name, null, err);
  }
  return out;
}

/**
 * MAX_SLOTS: a positive safe integer; falsy (absent, 0, '', null...) means DEFAULT_MAX_SLOTS, as in the original.
 * @param {unknown} value
 * @param {string} name
 * @returns {number}
 */
function validateMaxSlots(value, name) {
  if (!value) return DEFAULT_MAX_SLOTS;
  if (typeof value !== 'number') throw errors.ERR_INVALID_ARG_TYPE(name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw errors.ERR_OUT_OF_RANGE(name, 'a positive safe integer', value);
  }
  return value;
}

/**
 * maxWaiting: a non-negative safe integer, or Infinity (the default).
 * @param {unknown} value
 * @param {string} name
 * @returns {number}
 */
function validateMaxWaiting(value, name) {
  if (value === undefined || value === Infinity) return Infinity;
  if (typeof value !== 'number') throw errors.ERR_INVALID_ARG_TYPE(name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw errors.ERR_OUT_OF_RANGE(name, 'a non-negative integer or Infinity', value);
  }
  return value;
}

/**
 * maxHeldBytes: a non-negative safe integer; undefined means DEFAULT_MAX_HELD_BYTES.
 * @param {unknown} value
 * @param {string} name
 * @returns {number}
 */
function validateMaxHeldBytes(value, name) {
  if (value === undefined) return DEFAULT_MAX_HELD_BYTES;
  if (typeof value !== 'number') throw errors.ERR_INVALID_ARG_TYPE(name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw errors.ERR_OUT_OF_RANGE(name, 'a non-negative safe integer', value);
  }
  return value;
}

/**
 * The client's time-outs (acquire, close): undefined or Infinity (no time-out), or 0..TIMEOUT_MAX ms.
 * @param {unknown} value
 * @param {string} name e.g. 'acquire: options.timeout'
 * @returns {number | undefined}
 */
function validateTimeout(value, name) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw errors.ERR_INVALID_ARG_TYPE(name, 'a number of ms', value);
  if (!(value >= 0 && (value <= TIMEOUT_MAX || value === Infinity))) {
    throw errors.ERR_OUT_OF_RANGE(name, `a number of ms from 0 to ${TIMEOUT_MAX}, or Infinity`, value);
  }
  return value;
}

/**
 * The rover's ms options: a falsy value (undefined, null, 0) means `fallback`, as in the original;
 * otherwise a number > 0 and <= TIMEOUT_MAX (NaN is a type fault).
 * @param {unknown} value
 * @param {string} name e.g. 'options.connectTimeout'
 * @param {number} fallback
 * @returns {number}
 */
function validateMs(value, name, fallback) {
  if (value === undefined || value === null || value === 0) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw errors.ERR_INVALID_ARG_TYPE(name, 'a number of milliseconds', value);
  }
  if (!(value > 0) || value > TIMEOUT_MAX) {
    throw errors.ERR_OUT_OF_RANGE(name, `> 0 and <= ${TIMEOUT_MAX} ms`, value);
  }
  return value;
}

/**
 * The rover's `probes` (servers tried per tick): a positive safe integer; undefined means `fallback`.
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

/**
 * An optional boolean: undefined or a boolean, returned as `value === true`.
 * @param {unknown} value
 * @param {string} name
 * @returns {boolean}
 */
function validateBoolean(value, name) {
  if (value !== undefined && typeof value !== 'boolean') {
    throw errors.ERR_INVALID_ARG_TYPE(name, 'a boolean', value);
  }
  return value === true;
}

/**
 * An optional function: undefined (then `fallback`) or a function.
 * @template {Function} F
 * @param {unknown} value
 * @param {string} name
 * @param {F} fallback
 * @returns {F}
 */
function validateFunction(value, name, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') throw errors.ERR_INVALID_ARG_TYPE(name, 'a function', value);
  return /** @type {F} */ (value);
}

/**
 * An optional AbortSignal (undefined passes).
 * @param {unknown} value
 * @param {string} name e.g. 'acquire: options.signal'
 * @returns {AbortSignal | undefined}
 */
function validateAbortSignal(value, name) {
  if (value !== undefined && !isAbortSignal(value)) {
    throw errors.ERR_INVALID_ARG_TYPE(name, 'an AbortSignal', value);
  }
  return /** @type {AbortSignal | undefined} */ (value);
}

/**
 * A rover's server id: a non-empty string, or a finite number (made a string).
 * @param {unknown} value
 * @param {string} [name]
 * @returns {string}
 */
function validateServerId(value, name = 'a server id') {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string' || value.length === 0) {
    throw errors.ERR_INVALID_ARG_TYPE(name, 'a non-empty string (or a finite number)', value);
  }
  return value;
}

/**
 * A server's address `{ host, port }`, checked and normalised: host defaults to 'localhost' (what
 * net.connect() assumes, as the original did); a port string of digits is made a number.
 * @param {unknown} value
 * @param {string} id the server's id (validated), named in messages as `server "id"`
 * @returns {{ host: string, port: number }}
 */
function validateServerAddress(value, id) {
  const name = `server ${JSON.stringify(id)}`;
  if (value === null || typeof value !== 'object') {
    throw errors.ERR_INVALID_ARG_TYPE(name, 'an object { host, port }', value);
  }
  let host;
  let port;
  try {
    ({ host, port } = /** @type {{ host?: unknown, port?: unknown }} */ (value));
  } catch (err) {
    throw errors.ERR_INVALID_ARG_TYPE(name, null, err);
  }
  if (host === undefined) host = 'localhost';
  if (typeof host !== 'string') throw errors.ERR_INVALID_ARG_TYPE(`${name}: host`, 'a string', host);
  if (host.length === 0 || /[\s\0]/.test(host)) {
    throw errors.ERR_INVALID_ARG_VALUE(`${name}: host`, 'a non-empty name without spaces', host);
  }
  if (typeof port === 'string') {
    if (!/^[0-9]{1,5}$/.test(port)) {
      throw errors.ERR_INVALID_ARG_VALUE(`${name}: port`, 'a number from 1 to 65535', port);
    }
    port = Number(port);
  }
  if (typeof port !== 'number') throw errors.ERR_INVALID_ARG_TYPE(`${name}: port`, 'a number', port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw errors.ERR_OUT_OF_RANGE(`${name}: port`, 'an integer from 1 to 65535', port);
  }
  return { host, port };
}

/**
 * The servers option `{ id: { host, port } }` (undefined or null: none), read into [id, address]
 * pairs; each pair is checked by the caller (validateServerId, validateServerAddress).
 * @param {unknown} value
 * @param {string} name e.g. 'options.servers'
 * @returns {Array<[string, unknown]>}
 */
function validateServers(value, name) {
  if (value === undefined || value === null) return [];
  if (typeof value !== 'object') {
    throw errors.ERR_INVALID_ARG_TYPE(name, 'an object { id: { host, port } }', value);
  }
  try {
    const servers = /** @type {Record<string, unknown>} */ (value);
    return Object.keys(servers).map((id) => [id, servers[id]]);
  } catch (err) {
    throw errors.ERR_INVALID_ARG_TYPE(name, null, err);
  }
}

/**
 * A slot the pool can keep: a non-negative safe integer of type number.
 * @param {unknown} value
 * @returns {value is number}
 */
function isSlot(value) {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * A socket, as far as the pool needs one: it can be watched, destroyed and
 * marked. Never a Proxy (no net.Socket is one, and its traps could throw at
 * any later step, even inside Node's own destroy()); not frozen or sealed (the
 * marks could not be set, and a frozen net.Socket throws from inside
 * destroy()); a getter that throws makes it not a socket instead of a throw.
 * @param {unknown} value
 * @returns {boolean}
 */
function isSocketLike(value) {
  if (value === null || typeof value !== 'object' || types.isProxy(value)) return false;
  try {
    const v = /** @type {any} */ (value);
    return typeof v.on === 'function' && typeof v.destroy === 'function' && Object.isExtensible(v);
  } catch {
    return false;
  }
}

/**
 * An AbortSignal, or anything shaped as one (never a Proxy; a throwing getter makes it not one).
 * @param {unknown} value
 * @returns {value is AbortSignal}
 */
function isAbortSignal(value) {
  if (value === null || typeof value !== 'object' || types.isProxy(value)) return false;
  try {
    const v = /** @type {any} */ (value);
    return (
      typeof v.aborted === 'boolean' &&
      typeof v.addEventListener === 'function' &&
      typeof v.removeEventListener === 'function'
    );
  } catch {
    return false;
  }
}

module.exports = {
  TIMEOUT_MAX,
  DEFAULT_MAX_SLOTS,
  DEFAULT_MAX_HELD_BYTES,
  CLIENT_OPTION_KEYS,
  ROVER_OPTION_KEYS,
  readOptions,
  validateMaxSlots,
  validateMaxWaiting,
  validateMaxHeldBytes,
  validateTimeout,
  validateMs,
  validateProbes,
  validateBoolean,
  validateFunction,
  validateAbortSignal,
  validateServerId,
  validateServerAddress,
  validateServers,
  isSlot,
  isSocketLike,
  isAbortSignal,
};
