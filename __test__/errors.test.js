'use strict';

// One registry of error codes (lib/errors.js): index.d.ts's ErrorCode and
// README's error table list exactly its codes, and no source file makes an
// error with a code the registry lacks.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { codes, codedError, registry } = require('../lib/errors.js');

const root = path.join(__dirname, '..');
const read = (file) => fs.readFileSync(path.join(root, file), 'utf8');
const sorted = (list) => [...new Set(list)].sort();

test("index.d.ts's ErrorCode lists exactly the registry's codes", () => {
  const dts = read('index.d.ts');
  const block = dts.slice(
    dts.indexOf('export type ErrorCode ='),
    dts.indexOf(';', dts.indexOf('export type ErrorCode =')),
  );
  const typed = [...block.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
  assert.deepEqual(sorted(typed), sorted(codes));
});

test("README's error table lists exactly the registry's codes", () => {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Errors');
  const table = readme.slice(start, readme.indexOf('\n#', start + 5));
  const listed = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.equal(listed.length, new Set(listed).size, 'a code listed twice');
  assert.deepEqual(sorted(listed), sorted(codes));
});

test('every code the JavaScript and the Rust sources use is registered', () => {
  const files = ['lib', 'src']
    .flatMap((dir) => fs.readdirSync(path.join(root, dir), { recursive: true }).map((f) => `${dir}/${f}`))
    .filter((f) => /\.(js|rs)$/.test(f))
    .concat(['binding.js', 'index.js']);
  const used = [];
  for (const file of files) {
    const text = read(file);
    for (const m of text.matchAll(/['"`]((?:ERR_[A-Z_]+)|ABORT_ERR)['"`]/g)) used.push(m[1]);
  }
  const unknown = sorted(used).filter((code) => !registry.has(code));
  assert.deepEqual(unknown, []);
});

test('codedError refuses a code not in the registry, and gives each its class', () => {
  assert.throws(() => codedError('ERR_CALLOSUM_NO_SUCH_THING', 'x'), /unregistered error code/);
  assert.ok(codedError('ERR_OUT_OF_RANGE', 'x') instanceof RangeError);
  assert.ok(codedError('ERR_INVALID_ARG_TYPE', 'x') instanceof TypeError);
  const abort = codedError('ABORT_ERR', 'x');
  assert.equal(abort.name, 'AbortError');
});
