'use strict';

// Every D test (SPEC D1-D9, in the feature files named below, each with its id
// at the start of its title) must fail on the original's behaviour, or it
// proves nothing. This runs those tests against the cost-faithful model of
// 0.1.5 (__test__/fixtures/original-0.1.5-model.js, itself checked by original-model.test.js) and
// expects each D test to fail on an assertion about behaviour; D9 fails
// because the original has no close() at all, which is the defect.

const test = require('node:test');
const assert = require('node:assert/strict');
const { runOnModel } = require('./helpers.js');

// Where the D tests live; each file runs with only its D tests selected.
const DEFECT_FILES = [
  'lend-return.test.js',
  'offers.test.js',
  'dead-sockets.test.js',
  'hostile.test.js',
  'close.test.js',
];

test('D1-D9 each fail against the model of the original 0.1.5', { timeout: 120_000 }, () => {
  const results = [];
  for (const file of DEFECT_FILES) {
    const out = runOnModel(file, '^D\\d');
    const found = [
      ...out.matchAll(/^(not ok|ok) \d+ - (D\d):[^\n]*\n([\s\S]*?)(?=^(?:not ok|ok) \d+ - |^1\.\.)/gm),
    ].map(([, status, id, body]) => ({ status, id, crashed: /^\s+name: '(TypeError|ReferenceError)'/m.test(body) }));
    assert.ok(found.length > 0, `no D test ran in ${file}\n${out}`);
    results.push(...found);
  }
  results.sort((a, b) => a.id.localeCompare(b.id));
  assert.deepEqual(
    results.map((r) => r.id),
    ['D1', 'D2', 'D3', 'D4', 'D5', 'D6', 'D7', 'D8', 'D9'],
  );
  for (const r of results) {
    assert.equal(r.status, 'not ok', `${r.id} passes on the original: it does not test the defect`);
    // A failed assertion, not a crash on an API the original lacks (except D9).
    assert.equal(r.crashed, r.id === 'D9', `${r.id} fails for another reason`);
  }
});
