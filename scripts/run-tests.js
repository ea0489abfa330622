'use strict';

// `npm test`'s JavaScript half: every __test__/*.test.js file under
// `node --test`. The files are listed here because a directory argument
// (`node --test __test__/`) fails on Node 22 and later, and a glob is expanded
// by Node only from 21 on (and by no shell on Windows).
// Usage: node scripts/run-tests.js [file-name-filter...]

const { spawnSync } = require('node:child_process');
const { readdirSync } = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', '__test__');
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.test.js'))
  .filter((name) => filters.length === 0 || filters.some((f) => name.includes(f)))
  .sort()
  .map((name) => path.join('__test__', name));
if (files.length === 0) {
  console.error(`run-tests: no test file matches ${filters.join(', ')}`);
  process.exit(1);
}
const { status, signal } = spawnSync(process.execPath, ['--test', '--expose-gc', ...files], {
  cwd: path.join(__dirname, '..'),
  stdio: 'inherit',
});
process.exit(status ?? (signal ? 1 : 0));
