'use strict';

// The rover's argument checks. Each throws a coded error (ERR_INVALID_ARG_TYPE,
// ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE) and returns the value to use.

const { codedError, describe } = require('../errors.js');

/** Longest delay setTimeout/setInterval honour. */
const MAX_TIMER_MS = 2147483647;

/** Every option `new Rover()` reads (and `client.rove()` passes on). */
const ROVER_OPTION_KEYS = Object.freeze([
  'ROVING_INTERVAL',
  'connectTimeout',
  'handshakeTimeout',
  'backOffUnreachable',
  'maxBackoff',
  'probes',
  'random',
  'now',
  'connect',
  'lookup',
  'servers',
]);

/**
 * A time option in ms; a falsy value (undefined, null, 0) means `fallback`, as in the original.
 * @param {string} name @param {unknown} value @param {number} fallback @returns {number}
 */
function checkMs(name, value, fallback) {
  if (value === undefined || value === null || value === 0) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw codedError(
      'ERR_INVALID_ARG_TYPE',
      `options.${name} must be a number of milliseconds, received ${describe(value)}`,
    );
  }
  if (!(value > 0) || value > MAX_TIMER_MS) {
    throw codedError(
      'ERR_OUT_OF_RANGE',
      `options.${name} must be > 0 and <= ${MAX_TIMER_MS} ms, received ${describe(value)}`,
    );
  }
  return value;
}

/** @param {unknown} id @returns {string} */
function checkId(id) {
  if (typeof id === 'number' && Number.isFinite(id)) return String(id);
  if (typeof id !== 'string' || id.length === 0) {
    throw codedError(
      'ERR_INVALID_ARG_TYPE',
      `a server id must be a non-empty string (or a finite number), received ${describe(id)}`,
    );
  }
  return id;
}

/**
 * `{ host, port }` checked and normalised (a missing host is 'localhost', a port string a number).
 * @param {string} id @param {unknown} server @returns {{ host: string, port: number }}
 */
function checkServer(id, server) {
  const where = `server ${JSON.stringify(id)}`;
  if (server === null || typeof server !== 'object') {
    throw codedError('ERR_INVALID_ARG_TYPE', `${where} must be an object { host, port }, received ${describe(server)}`);
  }
  let host;
  let port;
  try {
    ({ host, port } = /** @type {{ host?: unknown, port?: unknown }} */ (server));
  } catch (err) {
    throw codedError('ERR_INVALID_ARG_TYPE', `${where} could not be read (${describe(err)})`, { cause: err });
  }
  if (host === undefined) host = 'localhost'; // what net.connect() assumes, as the original did
  if (typeof host !== 'string') {
    throw codedError('ERR_INVALID_ARG_TYPE', `${where}: host must be a string, received ${describe(host)}`);
  }
  if (host.length === 0 || /[\s\0]/.test(host)) {
    throw codedError(
      'ERR_INVALID_ARG_VALUE',
      `${where}: host must be a non-empty name without spaces, received ${describe(host)}`,
    );
  }
  if (typeof port === 'string') {
    if (!/^[0-9]{1,5}$/.test(port)) {
      throw codedError(
        'ERR_INVALID_ARG_VALUE',
        `${where}: port must be a number from 1 to 65535, received ${describe(port)}`,
      );
    }
    port = Number(port);
  }
  if (typeof port !== 'number') {
    throw codedError('ERR_INVALID_ARG_TYPE', `${where}: port must be a number, received ${describe(port)}`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw codedError(
      'ERR_OUT_OF_RANGE',
      `${where}: port must be an integer from 1 to 65535, received ${describe(port)}`,
    );
  }
  return { host, port };
}

/** @param {string} name @param {unknown} value @returns {boolean} (undefined: false) */
function checkBoolean(name, value) {
  if (value !== undefined && typeof value !== 'boolean') {
    throw codedError('ERR_INVALID_ARG_TYPE', `options.${name} must be a boolean, received ${describe(value)}`);
  }
  return value === true;
}

/**
 * @template {Function} F
 * @param {string} name @param {unknown} value @param {F} fallback @returns {F} (undefined: fallback)
 */
function checkFunction(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') {
    throw codedError('ERR_INVALID_ARG_TYPE', `options.${name} must be a function, received ${describe(value)}`);
  }
  return /** @type {F} */ (value);
}

/**
 * A count option: a positive safe integer; undefined means `fallback`.
 * @param {string} name @param {unknown} value @param {number} fallback @returns {number}
 */
function checkCount(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') {
    throw codedError('ERR_INVALID_ARG_TYPE', `options.${name} must be a number, received ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw codedError(
      'ERR_OUT_OF_RANGE',
      `options.${name} must be a positive safe integer, received ${describe(value)}`,
    );
  }
  return value;
}

/**
 * The `servers` option as [id, server] pairs (undefined, null: none).
 * @param {unknown} servers @returns {Array<[string, unknown]>}
 */
function serverEntries(servers) {
  if (servers === undefined || servers === null) return [];
  if (typeof servers !== 'object') {
    throw codedError(
      'ERR_INVALID_ARG_TYPE',
      `options.servers must be an object { id: { host, port } }, received ${describe(servers)}`,
    );
  }
  try {
    const object = /** @type {Record<string, unknown>} */ (servers);
    return Object.keys(object).map((id) => [id, object[id]]);
  } catch (err) {
    throw codedError('ERR_INVALID_ARG_TYPE', `options.servers could not be read (${describe(err)})`, { cause: err });
  }
}

module.exports = {
  MAX_TIMER_MS,
  ROVER_OPTION_KEYS,
  checkMs,
  checkId,
  checkServer,
  checkBoolean,
  checkFunction,
  checkCount,
  serverEntries,
};
