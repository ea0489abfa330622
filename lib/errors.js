'use strict';

// Every error this package reports, defined once: its code, its class and
// when it happens. The client, the rover, the waiters and the loader make
// their errors here, so a code cannot be misspelt or given to two faults
// (`codedError` refuses a code not in the registry). index.d.ts's ErrorCode
// and README's error table are checked against this list by
// __test__/errors.test.js. (Models: Node's lib/internal/errors.js, undici's
// lib/core/errors.js.)

const { inspect, types } = require('node:util');

/** code -> { code, Base, when } */
const registry = new Map();

function def(code, Base, when) {
  registry.set(code, Object.freeze({ code, Base, when }));
}

// Arguments (Node's own codes, for the same faults Node reports with them).
def('ERR_INVALID_ARG_TYPE', TypeError,
  'an option or argument of the wrong type: thrown by constructors and setup calls (`new CallosumClient`, `new Rover`, `addServer`, `rove`), rejected by `acquire`');
def('ERR_INVALID_ARG_VALUE', TypeError,
  'an option or argument of the right type but an unusable value (a host with spaces, a port string that is not a number)');
def('ERR_OUT_OF_RANGE', RangeError,
  'a number outside its range (`MAX_SLOTS`, `maxWaiting`, time-outs, ports)');

// The pool's methods called from I/O callbacks: 'error' events, never throws.
def('ERR_CALLOSUM_INVALID_SLOT', TypeError,
  '`newConnection` slot is not a non-negative safe integer of type number; the offered socket is destroyed (the caller handed it over)');
def('ERR_CALLOSUM_NOT_A_SOCKET', TypeError,
  '`newConnection` got something that is not a usable socket (no `on`/`destroy`, frozen, or a Proxy or getter that throws); a kept socket that starts throwing is dropped with this code');
def('ERR_CALLOSUM_SOCKET_HELD', Error,
  '`newConnection` of a socket a pool already holds (idle, leased or displaced); it is left alone');
def('ERR_CALLOSUM_NOT_LEASED', Error,
  '`returnConnection` of anything not currently lent by this pool: `undefined`, a foreign socket, a second return (also one made before the waiter it was handed to has run); nothing is adopted, destroyed or lent twice');

// acquire() and close().
def('ERR_CALLOSUM_ACQUIRE_TIMEOUT', Error, '`acquire()` waited `timeout` ms');
def('ERR_CALLOSUM_QUEUE_FULL', Error, '`acquire()` when `maxWaiting` callers already wait');
def('ERR_CALLOSUM_CLOSED', Error, '`acquire()` on a closed pool, or waiting when it closed');
def('ABORT_ERR', Error, '`acquire()` aborted by its `signal` (an `AbortError`, the signal\'s reason as `cause`)');
def('ERR_CALLOSUM_CLOSE_TIMEOUT', Error,
  '`close({ timeout })`: sockets were still out when the deadline passed; they are destroyed');

// The rover: 'error' events.
def('ERR_CALLOSUM_NO_SERVERS', Error, 'rover tick with no known server');
def('ERR_CALLOSUM_BAD_SLOT_LINE', Error, 'rover: the server\'s first line is not a valid slot line (`reason` says why); the socket is destroyed');
def('ERR_CALLOSUM_CLOSED_EARLY', Error, 'rover: the connection ended or failed before the slot line was whole');
def('ERR_CALLOSUM_HANDSHAKE_TIMEOUT', Error, 'rover: no whole slot line within `handshakeTimeout` ms of connecting');

// The native addon.
def('ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND', Error,
  '`require` found no native binary for this platform (it says what it tried and how to build one)');
def('ERR_CALLOSUM_POISONED', Error,
  'the native pool hit an internal fault (a Rust panic) and refuses every later call; the client reports it once and behaves as closed');
def('ERR_CALLOSUM_REENTRANT', Error, 'a native pool was called while already in a call (an internal fault)');
def('ERR_CALLOSUM_NATIVE', Error,
  'the native layer failed in a way that should not happen (N-API failing to make a value, a pool id naming no live pool); src/errors.rs lists the cases');

/** Every registered code, in registry order. */
const codes = Object.freeze([...registry.keys()]);

/** An error of the registered class for `code`, with `code` and `props` on it. */
function codedError(code, message, props) {
  const spec = registry.get(code);
  if (spec === undefined) throw new Error(`callosum-client-tcp: unregistered error code ${code}`);
  const err = new spec.Base(message);
  err.code = code;
  if (props !== undefined) Object.assign(err, props);
  if (code === 'ABORT_ERR') err.name = 'AbortError';
  return err;
}

// Node's own AbortError shape: name 'AbortError', code 'ABORT_ERR', cause.
function abortError(signal) {
  let reason;
  try {
    reason = signal.reason;
  } catch {
    reason = undefined;
  }
  return codedError('ABORT_ERR', 'The operation was aborted', { cause: reason });
}

// How a bad value is named in messages: short, and safe for any value a
// caller can construct. It never runs a Proxy trap and never lets a throwing
// getter escape: describing the value must not be what throws.
function describe(value) {
  try {
    return describeUnsafe(value);
  } catch {
    return 'an object that cannot be inspected';
  }
}

function describeUnsafe(value) {
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return inspect(value, { maxStringLength: 40 });
  if (types.isProxy(value)) return 'a Proxy';
  const name = ownConstructorName(value);
  if (name !== undefined && name !== 'Object' && name !== 'Array') {
    const slot = readQuietly(value, '_slot');
    return typeof slot === 'number' ? `a ${name} (slot ${slot})` : `a ${name}`;
  }
  // Plain objects and arrays: util.inspect reads own data properties only
  // (getters are shown as [Getter], not called).
  return inspect(value, { depth: 0, breakLength: Infinity, maxStringLength: 40, maxArrayLength: 4, customInspect: false });
}

function ownConstructorName(value) {
  const ctor = readQuietly(value, 'constructor');
  if (typeof ctor !== 'function') return undefined;
  const name = readQuietly(ctor, 'name');
  return typeof name === 'string' ? name : undefined;
}

// A property read that a throwing getter cannot turn into a throw.
function readQuietly(object, key) {
  try {
    return object[key];
  } catch {
    return undefined;
  }
}

// Reads `keys` of an options object into a plain one, so that a Proxy or a
// getter that throws becomes a coded error (ERR_INVALID_ARG_TYPE, the throw
// as its cause) instead of an uncoded throw from deep inside a check.
// Returns {} for undefined and null; throws the coded error.
function readOptions(where, options, keys) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') {
    throw codedError('ERR_INVALID_ARG_TYPE', `${where}: options must be an object, received ${describe(options)}`);
  }
  const out = {};
  try {
    for (const key of keys) out[key] = options[key];
  } catch (err) {
    throw codedError('ERR_INVALID_ARG_TYPE',
      `${where}: options could not be read (${describe(err)})`, { cause: err });
  }
  return out;
}

module.exports = { codedError, describe, abortError, readQuietly, readOptions, codes, registry };
