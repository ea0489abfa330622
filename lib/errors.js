'use strict';

// Every error this package reports, defined once: its code, its class, when it
// happens and its message template. The client, the rover, the waiters, the
// native bridge and the loader make their errors here, and call sites pass
// values, never sentences: `errors.ERR_OUT_OF_RANGE('options.MAX_SLOTS',
// 'a positive safe integer', value)` (Node's `new ERR_OUT_OF_RANGE(...)`, as a
// maker returning a plain RangeError with a `code`). So a code cannot be
// misspelt or given to two faults (`codedError` refuses a code not in the
// registry), and a message reads the same wherever it is made. index.d.ts's ErrorCode and README's
// error table are checked against this list by __test__/errors.test.js.
// (Models: Node's lib/internal/errors.js and its `E()`, undici's
// lib/core/errors.js.)
//
// A template is `(...values) => string`; an entry may also name the values
// that become properties of the error (`props`, e.g. `cause`, `serverId`).
// Values are described for messages by `describe()` below, which never runs a
// Proxy trap or lets a throwing getter escape.

const { inspect, types } = require('node:util');

/**
 * @typedef {(...values: any[]) => string} Template
 * @typedef {(...values: any[]) => Record<string, unknown>} Props
 * @typedef {{ code: string, Base: ErrorConstructor, when: string, message: Template, props: Props | undefined }} Spec
 * @typedef {Error & { code: string, [key: string]: any }} CodedError
 * @typedef {import('../index.js').ErrorCode} ErrorCode index.d.ts's list of codes (a test checks it against this one)
 */

/** @type {Map<string, Readonly<Spec>>} code -> its spec */
const registry = new Map();

/**
 * @param {string} code
 * @param {ErrorConstructor} Base
 * @param {string} when
 * @param {Template} message
 * @param {Props} [props]
 */
function E(code, Base, when, message, props) {
  registry.set(code, Object.freeze({ code, Base, when, message, props }));
  /** @param {...any} values */
  const make = (...values) => {
    const err = codedError(code, message(...values), props === undefined ? undefined : props(...values));
    // The stack starts where the error was made, not in here (Node's hideStackFrames).
    Error.captureStackTrace(err, make);
    return err;
  };
  errors[/** @type {ErrorCode} */ (code)] = make;
}

/**
 * One maker per code, as Node's `new ERR_X(...)`: `errors.ERR_OUT_OF_RANGE('options.MAX_SLOTS', 'a positive
 * safe integer', value)` makes the registered class with the code's message for those values.
 * @type {Record<ErrorCode, (...values: any[]) => CodedError>}
 */
const errors = /** @type {any} */ ({});

// `name must be expected, received value`: the shape of every argument check.
/** @type {Template} */
const mustBe = (name, expected, actual) => `${name} must be ${expected}, received ${describe(actual)}`;

// ` (server "a" at host:port)`: how the rover names the server an error is about.
/** @param {string} id @param {{ host: string, port: number }} server */
const atServer = (id, server) => ` (server ${JSON.stringify(id)} at ${server.host}:${server.port})`;

// Arguments (Node's own codes, for the same faults Node reports with them).
// A value that throws when read (a Proxy, a getter) is a type fault too:
// ERR_INVALID_ARG_TYPE with `expected` null says what failed, the throw as cause.
E(
  'ERR_INVALID_ARG_TYPE',
  TypeError,
  'an option or argument of the wrong type: thrown by constructors and setup calls (`new CallosumClient`, `new Rover`, `addServer`, `rove`), rejected by `acquire`',
  (name, expected, actual, failed = 'could not be read') =>
    expected === null ? `${name} ${failed} (${describe(actual)})` : mustBe(name, expected, actual),
  (_name, expected, actual) => (expected === null ? { cause: actual } : {}),
);
E(
  'ERR_INVALID_ARG_VALUE',
  TypeError,
  'an option or argument of the right type but an unusable value (a host with spaces, a port string that is not a number)',
  mustBe,
);
E('ERR_OUT_OF_RANGE', RangeError, 'a number outside its range (`MAX_SLOTS`, `maxWaiting`, time-outs, ports)', mustBe);

// The pool's methods called from I/O callbacks: 'error' events, never throws.
E(
  'ERR_CALLOSUM_INVALID_SLOT',
  TypeError,
  '`newConnection` slot is not a non-negative safe integer of type number; the offered socket is destroyed (the caller handed it over)',
  (slot) => `newConnection: ${mustBe('slot', 'a non-negative safe integer', slot)}; socket destroyed`,
);
// ('offered', value): newConnection got it; ('threw', error): a kept socket threw.
E(
  'ERR_CALLOSUM_NOT_A_SOCKET',
  TypeError,
  '`newConnection` got something that is not a usable socket (no `on`/`destroy`, frozen, or a Proxy or getter that throws); a kept socket that starts throwing is dropped with this code',
  (how, value) =>
    how === 'threw'
      ? `a kept socket threw when the pool used it (${describe(value)}); dropped`
      : `newConnection: ${mustBe('socket', 'a socket (with on() and destroy())', value)}`,
  (how, value) => (how === 'threw' ? { cause: value } : {}),
);
E(
  'ERR_CALLOSUM_SOCKET_HELD',
  Error,
  '`newConnection` of a socket a pool already holds (idle, leased or displaced); it is left alone',
  (socket) => `newConnection: this socket is already held by a pool (${describe(socket)}); not offered again`,
);
// (socket, why): why is undefined, 'handed', 'idle', or 'released' (a Lease's second release()).
E(
  'ERR_CALLOSUM_NOT_LEASED',
  Error,
  '`returnConnection` of anything not currently lent by this pool: `undefined`, a foreign socket, a second return (also one made before the waiter it was handed to has run); nothing is adopted, destroyed or lent twice',
  (socket, why) =>
    why === 'released'
      ? 'lease.release(): this lease was released already'
      : `returnConnection: ${describe(socket)} is not a socket lent by this pool` +
        (why === 'handed'
          ? ' (it was just handed to a waiter of acquire(): returned twice?)'
          : why === 'idle'
            ? ' (it is idle: returned twice?)'
            : ''),
);

// acquire() and close().
E('ERR_CALLOSUM_ACQUIRE_TIMEOUT', Error, '`acquire()` waited `timeout` ms', (timeout) => {
  return `acquire: no connection within ${timeout} ms`;
});
E(
  'ERR_CALLOSUM_QUEUE_FULL',
  Error,
  '`acquire()` when `maxWaiting` callers already wait',
  (waiting, maxWaiting) => `acquire: ${waiting} callers already waiting (maxWaiting ${maxWaiting})`,
);
E('ERR_CALLOSUM_CLOSED', Error, '`acquire()` on a closed pool, or waiting when it closed', (whileWaiting) =>
  whileWaiting ? 'acquire: the pool was closed while waiting' : 'acquire: the pool is closed',
);
E(
  'ABORT_ERR',
  Error,
  "`acquire()` aborted by its `signal` (an `AbortError`, the signal's reason as `cause`)",
  () => 'The operation was aborted',
  (reason) => ({ cause: reason }),
);
E(
  'ERR_CALLOSUM_CLOSE_TIMEOUT',
  Error,
  '`close({ timeout })`: sockets were still out when the deadline passed; they are destroyed',
  (leased, timeout) => `close: ${leased} sockets still out after ${timeout} ms were destroyed`,
  (leased) => ({ leased }),
);

// The rover: 'error' events. Its connection errors carry the server's id and
// address (`serverId`, `server`), as values after the ones the message needs.
E('ERR_CALLOSUM_NO_SERVERS', Error, 'rover tick with no known server', () => {
  return 'the rover knows no Callosum server to connect to';
});
// (reason, detail, serverId, server): reason is the parser's code ('not-digits', ...), detail its words.
E(
  'ERR_CALLOSUM_BAD_SLOT_LINE',
  Error,
  "rover: the server's first line is not a valid slot line (`reason` says why); the socket is destroyed",
  (_reason, detail, serverId, server) => `bad slot line: ${detail}${atServer(serverId, server)}`,
  (reason, _detail, serverId, server) => ({ serverId, server, reason }),
);
// (how, serverId, server, error): how is 'ended', 'closed' or 'failed' (then `error` is the socket's, as cause).
E(
  'ERR_CALLOSUM_CLOSED_EARLY',
  Error,
  'rover: the connection ended or failed before the slot line was whole',
  (how, serverId, server, error) =>
    `connection ${how} before the slot line was whole${how === 'failed' ? `: ${error.message}` : ''}` +
    atServer(serverId, server),
  (how, serverId, server, error) => (how === 'failed' ? { serverId, server, cause: error } : { serverId, server }),
);
E(
  'ERR_CALLOSUM_HANDSHAKE_TIMEOUT',
  Error,
  'rover: no whole slot line within `handshakeTimeout` ms of connecting',
  (ms, serverId, server) => `no slot line within ${ms} ms of connecting${atServer(serverId, server)}`,
  (_ms, serverId, server) => ({ serverId, server }),
);

// The native addon.
// (facts, cause): what binding.js found; see notFoundMessage.
E(
  'ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND',
  Error,
  '`require` found no native binary for this platform (it says what it tried and how to build one)',
  (facts) => notFoundMessage(facts),
  (facts, cause) => ({ cause, platform: facts.platform, localFile: facts.localFile, attempts: facts.tried }),
);
// ('names', missing[]) or ('bytes', byteLength, expected).
E(
  'ERR_CALLOSUM_NATIVE_MISMATCH',
  Error,
  'the native addon loaded was built from other sources than this JavaScript (a layout name missing, or a shared block of another size); rebuild it',
  (how, got, expected) =>
    how === 'names'
      ? `callosum-client-tcp: the native addon does not match lib/native.js (no ${got.join(', ')} in its layout); rebuild the addon`
      : `callosum-client-tcp: native layout mismatch (${got} bytes, expected ${expected}); rebuild the addon`,
);
E(
  'ERR_CALLOSUM_POISONED',
  Error,
  'the native pool hit an internal fault (a Rust panic) and refuses every later call; the client reports it once and behaves as closed',
  (cause) => `native pool failed: ${describe(cause)}`,
  (cause) => ({ cause }),
);
E('ERR_CALLOSUM_REENTRANT', Error, 'a native pool was called while already in a call (an internal fault)', (what) =>
  String(what),
);
E(
  'ERR_CALLOSUM_NATIVE',
  Error,
  'the native layer failed in a way that should not happen (N-API failing to make a value, a pool id naming no live pool); src/errors.rs lists the cases',
  (what) => String(what),
);

/** Every registered code, in registry order. */
const codes = Object.freeze([...registry.keys()]);

/**
 * An error of the registered class for `code`, with `message`, `code` and `props` on it: what the makers in
 * `errors` use. Call sites use the makers (values, not sentences).
 * @param {string} code
 * @param {string} message
 * @param {Record<string, unknown>} [props]
 * @returns {CodedError}
 */
function codedError(code, message, props) {
  const spec = registry.get(code);
  if (spec === undefined) throw new Error(`callosum-client-tcp: unregistered error code ${code}`);
  const err = /** @type {CodedError} */ (new spec.Base(message));
  err.code = code;
  if (props !== undefined) Object.assign(err, props);
  if (code === 'ABORT_ERR') err.name = 'AbortError';
  return err;
}

/**
 * Node's own AbortError shape: name 'AbortError', code 'ABORT_ERR', the signal's reason as cause.
 * @param {AbortSignal} signal
 */
function abortError(signal) {
  let reason;
  try {
    reason = signal.reason;
  } catch {
    reason = undefined;
  }
  return errors.ABORT_ERR(reason);
}

/**
 * The loader's message: what it tried and how to build the addon.
 * @param {{ name: string, dir: string, platform: string, processPlatform: string, processArch: string,
 *   tried: string[], prebuilt: string[], localFile: string | null }} facts
 */
function notFoundMessage(facts) {
  const { name, dir, platform, tried, prebuilt, localFile } = facts;
  const packageName = `${name}-${platform}`;
  const lines = [
    `${name}: no native addon could be loaded for ${platform} (platform ${facts.processPlatform}, arch ${facts.processArch}).`,
    'Tried:',
    ...tried.map((t) => `  - ${t}`),
    prebuilt.includes(platform)
      ? `A prebuilt binary exists for this platform in the package ${packageName}, an optional dependency: ` +
        'reinstall without --omit=optional / --no-optional, and delete package-lock.json and node_modules first ' +
        'if the lock file was made on another platform (npm/cli#4828).'
      : `No prebuilt binary is published for ${platform}${prebuilt.length ? ` (prebuilt: ${prebuilt.join(', ')})` : ''}.`,
    ...(tried.some((t) => t.includes('version mismatch'))
      ? [
          'The prebuilt package comes from another release than this one: reinstall so both come from the same ' +
            'release, or set NAPI_RS_ENFORCE_VERSION_CHECK=0 to use it anyway.',
        ]
      : []),
    `To build it from source, install Rust and cargo (https://rustup.rs), then run in ${dir}:`,
    '  node scripts/install.js',
    `or, from your project: npm rebuild ${name} (cargo builds it and the library is copied to ` +
      `${localFile ?? `${name}.<platform>.node`}).`,
    `If npm skipped the package's install script (allowScripts), approve it first: npm install-scripts approve ${name}`,
  ];
  return lines.join('\n');
}

// How a bad value is named in messages: short, and safe for any value a
// caller can construct. It never runs a Proxy trap and never lets a throwing
// getter escape: describing the value must not be what throws.
/** @param {unknown} value @returns {string} */
function describe(value) {
  try {
    return describeUnsafe(value);
  } catch {
    return 'an object that cannot be inspected';
  }
}

/** @param {unknown} value @returns {string} */
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
  return inspect(value, {
    depth: 0,
    breakLength: Infinity,
    maxStringLength: 40,
    maxArrayLength: 4,
    customInspect: false,
  });
}

/** @param {object} value */
function ownConstructorName(value) {
  const ctor = readQuietly(value, 'constructor');
  if (typeof ctor !== 'function') return undefined;
  const name = readQuietly(ctor, 'name');
  return typeof name === 'string' ? name : undefined;
}

/**
 * A property read that a throwing getter cannot turn into a throw.
 * @param {any} object
 * @param {PropertyKey} key
 */
function readQuietly(object, key) {
  try {
    return object[key];
  } catch {
    return undefined;
  }
}

module.exports = { errors, codedError, describe, abortError, readQuietly, codes, registry };
