'use strict';

// The package as its users get it (SPEC E3): require() and import give the
// same constructor, the exports map resolves by name, and the types in
// index.d.ts, run by `npm test`:
//
// 1. tsc (the project's own, from node_modules) compiles the consumers in
//    __test__/types/ with --noEmit: every public member, used as documented,
//    through the package's own name and its `exports` map. must-fail.ts is in
//    the same program: each wrong use sits under `// @ts-expect-error`, so a
//    wrong use that compiles is an "unused directive" error.
// 2. The directives are stripped and the program checked again through the
//    TypeScript API: every line under a directive, and no other line, must be
//    an error (so no case passes because some other line failed).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const root = ROOT;
const DIR = path.join(__dirname, 'types');
const TSCONFIG = path.join(DIR, 'tsconfig.json');
const MUST_FAIL = path.join(DIR, 'must-fail.ts');
const DIRECTIVE = /^\s*\/\/ @ts-expect-error\b.*$/;

function typescript() {
  try {
    return require(require.resolve('typescript', { paths: [ROOT] }));
  } catch {
    assert.fail('typescript is not installed: run `npm install` (it is a devDependency)');
  }
}

test('types: the consumers and the must-fail cases compile as expected (tsc --noEmit)', () => {
  const ts = typescript();
  const tsc = path.join(path.dirname(require.resolve('typescript/package.json', { paths: [ROOT] })), 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', TSCONFIG, '--pretty', 'false'], { cwd: ROOT, encoding: 'utf8' });
  assert.strictEqual(r.status, 0, `tsc ${ts.version} -p __test__/types failed:\n${r.stdout}${r.stderr}`);
});

test('types: every @ts-expect-error case in must-fail.ts is an error on its own line', () => {
  const ts = typescript();
  const lines = fs.readFileSync(MUST_FAIL, 'utf8').split('\n');
  const expected = [];
  const stripped = lines.map((line, i) => {
    if (!DIRECTIVE.test(line)) return line;
    expected.push(i + 2); // 1-based number of the next line, the wrong use
    return '';
  });
  assert.ok(expected.length >= 20, `only ${expected.length} must-fail cases`);

  const parsed = ts.getParsedCommandLineOfConfigFile(
    TSCONFIG,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    },
  );
  const host = ts.createCompilerHost(parsed.options);
  const readFile = host.readFile.bind(host);
  const text = stripped.join('\n');
  host.readFile = (f) => (path.resolve(f) === MUST_FAIL ? text : readFile(f));
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, onError) =>
    path.resolve(f) === MUST_FAIL ? ts.createSourceFile(f, text, lang) : getSourceFile(f, lang, onError);
  const program = ts.createProgram({ rootNames: [MUST_FAIL], options: parsed.options, host });
  const diagnostics = ts.getPreEmitDiagnostics(program);

  const byLine = new Map();
  for (const d of diagnostics) {
    assert.ok(
      d.file && path.resolve(d.file.fileName) === MUST_FAIL,
      `an error outside must-fail.ts: ${d.file ? d.file.fileName : ''} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    );
    const line = d.file.getLineAndCharacterOfPosition(d.start).line + 1;
    byLine.set(line, ts.flattenDiagnosticMessageText(d.messageText, ' '));
  }
  const compiled = expected.filter((l) => !byLine.has(l)).map((l) => `${l}: ${lines[l - 1].trim()}`);
  assert.deepStrictEqual(compiled, [], 'wrong uses that compile');
  const unexpected = [...byLine].filter(([l]) => !expected.includes(l)).map(([l, m]) => `${l}: ${m}`);
  assert.deepStrictEqual(unexpected, [], 'errors on lines that are not must-fail cases');
});

test('types: `await using` and `using` compile (tsc, target es2022) and dispose of the pool and the rover when run', () => {
  const tsc = path.join(path.dirname(require.resolve('typescript/package.json', { paths: [ROOT] })), 'bin', 'tsc');
  // Emitted inside the package, so that 'callosum-client-tcp' resolves to it
  // through package.json `exports` (self-reference), as in the other consumers.
  const out = path.join(DIR, '.out');
  fs.rmSync(out, { recursive: true, force: true });
  const r = spawnSync(
    process.execPath,
    [
      tsc,
      path.join(DIR, 'dispose.mts'),
      '--outDir',
      out,
      '--module',
      'node16',
      '--moduleResolution',
      'node16',
      '--target',
      'es2022',
      '--lib',
      'es2022,esnext.disposable',
      '--types',
      'node',
      '--strict',
      '--rootDir',
      DIR,
      '--pretty',
      'false',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.strictEqual(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
  const run = spawnSync(process.execPath, [path.join(out, 'dispose.mjs')], { cwd: ROOT, encoding: 'utf8' });
  fs.rmSync(out, { recursive: true, force: true });
  assert.strictEqual(run.status, 0, run.stderr);
  assert.deepStrictEqual(JSON.parse(run.stdout), { closed: true, destroyed: true, running: false });
});

test('E3: require and import give the same constructor', () => {
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    import C, { CallosumClient, Rover } from ${JSON.stringify(path.join(root, 'index.mjs'))};
    import { createRequire } from 'node:module';
    const req = createRequire(import.meta.url)(${JSON.stringify(root)});
    const c = new C({ MAX_SLOTS: 3 });
    console.log(C === req, CallosumClient === C, typeof Rover, c.MAX_SLOTS);
  `,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(out.trim(), 'true true function 3');
});

test('E3: the package exports map resolves for require and import by name', () => {
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    import C from 'callosum-client-tcp';
    import { createRequire } from 'node:module';
    console.log(C === createRequire(import.meta.url)('callosum-client-tcp'));
  `,
    ],
    { encoding: 'utf8', cwd: root },
  );
  assert.equal(out.trim(), 'true');
});
