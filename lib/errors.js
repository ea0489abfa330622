'use strict';

// Every error this package reports carries a string `code`, so callers can
// branch on it without parsing messages.

const { inspect } = require('node:util');

function codedError(Ctor, code, message, props) {
  const err = new Ctor(message);
  err.code = code;
  if (props !== undefined) Object.assign(err, props);
  return err;
}

// How a bad value is named in messages: short, and safe for any value.
function describe(value) {
  if (value !== null && typeof value === 'object') {
    const name = value.constructor?.name;
    if (typeof name === 'string' && name !== 'Object' && name !== 'Array') {
      return typeof value._slot === 'number' ? `a ${name} (slot ${value._slot})` : `a ${name}`;
    }
  }
  return inspect(value, { depth: 0, breakLength: Infinity, maxStringLength: 40, maxArrayLength: 4 });
}

// Node's own AbortError shape: name 'AbortError', code 'ABORT_ERR', cause.
function abortError(signal) {
  const err = codedError(Error, 'ABORT_ERR', 'The operation was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

module.exports = { codedError, describe, abortError };
