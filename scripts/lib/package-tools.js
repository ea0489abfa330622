'use strict';

// What scripts/test-package.js and scripts/test-runtimes.js share: running
// npm and node with a clean environment, packing the main package and a
// platform package, and installing tarballs in an empty project as a user
// would.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const BINARY_RE = new RegExp(`^${pkg.napi.binaryName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.([\\w-]+)\\.node$`);

// The environment of the nested npm and node runs: nothing inherited from
// the `npm run` that started the calling script may steer them (npm's cache
// folder excepted: where downloads are kept, not how anything behaves).
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_config_cache$/i.test(k)) {
      env[k] = v;
      continue;
    }
    if (/^npm_/i.test(k) || k === 'INIT_CWD' || k === 'NODE_OPTIONS') continue;
    if (k === 'CALLOSUM_BUILD_FROM_SOURCE' || k === 'CALLOSUM_SKIP_BUILD' || k === 'NAPI_RS_NATIVE_LIBRARY_PATH')
      continue;
    if (k === 'CARGO_TARGET_DIR' || k === 'CARGO_BUILD_TARGET_DIR') continue;
    env[k] = v;
  }
  env.npm_config_audit = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_update_notifier = 'false';
  return { ...env, ...extra };
}

/** Runs a command to completion; throws with the tail of its output unless it exits 0. */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    shell: process.platform === 'win32',
    ...opts,
    env: opts.env || cleanEnv(),
  });
  const out = `${r.stdout || ''}${r.stderr || ''}`;
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${out.split('\n').slice(-40).join('\n')}`,
    );
  }
  return { stdout: r.stdout || '', stderr: r.stderr || '', out };
}

/** `npm pack` of a folder (or a registry spec) into dest; returns npm's JSON entry plus `path`. */
function npmPack(what, dest, { cwd = what } = {}) {
  const { stdout } = run(
    NPM,
    ['pack', what === cwd ? '.' : what, '--json', '--ignore-scripts', '--pack-destination', dest],
    { cwd },
  );
  const info = JSON.parse(stdout.slice(stdout.indexOf('[')))[0];
  return { ...info, path: path.join(dest, info.filename) };
}

/** The .node file the repository's loader loads here, or null (with why). */
function loadedBinary(node = process.execPath) {
  const code =
    "require('./binding.js'); process.stdout.write(JSON.stringify(Object.keys(require.cache).filter((f) => f.endsWith('.node'))))";
  const r = spawnSync(node, ['-e', code], { cwd: ROOT, encoding: 'utf8', env: cleanEnv() });
  if (r.status !== 0) return { file: null, why: (r.stderr || '').trim().split('\n')[0] || `exit ${r.status}` };
  const [file] = JSON.parse(r.stdout);
  return file ? { file } : { file: null, why: 'no .node file in the require cache' };
}

/** `linux-x64-gnu` from `callosum-client-tcp.linux-x64-gnu.node` (napi-rs's naming). */
function abiOf(binaryFile) {
  const m = BINARY_RE.exec(path.basename(binaryFile));
  if (!m) throw new Error(`${binaryFile} is not named ${pkg.napi.binaryName}.<platform>.node`);
  return m[1];
}

/** `callosum-client-tcp-linux-x64-gnu`: the prebuilt platform package of an ABI. */
function platformPackageName(abi) {
  return `${pkg.name}-${abi}`;
}

/**
 * Packs the platform package for `abi`: npm/<abi>/ plus the binary, as the
 * release workflow's `napi artifacts` + `napi prepublish` do. Checks its name,
 * version and main against the main package.
 */
function packPlatformPackage(abi, binaryFile, dest) {
  const platformDir = path.join(ROOT, 'npm', abi);
  if (!fs.existsSync(platformDir)) throw new Error(`no npm/${abi}/ folder: this platform has no prebuilt package`);
  const stage = path.join(dest, `platform-package-${abi}`);
  fs.mkdirSync(stage);
  for (const f of fs.readdirSync(platformDir)) fs.copyFileSync(path.join(platformDir, f), path.join(stage, f));
  const binaryName = path.basename(binaryFile);
  fs.copyFileSync(binaryFile, path.join(stage, binaryName));
  const ppkg = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'));
  if (ppkg.name !== platformPackageName(abi)) throw new Error(`npm/${abi}/package.json is named ${ppkg.name}`);
  if (ppkg.version !== pkg.version)
    throw new Error(`npm/${abi} is version ${ppkg.version}, the package ${pkg.version}`);
  if (ppkg.main !== binaryName) throw new Error(`npm/${abi}/package.json main is ${ppkg.main}, expected ${binaryName}`);
  const info = npmPack(stage, dest);
  const names = info.files.map((f) => f.path);
  if (!names.includes(binaryName)) throw new Error(`the platform tarball lacks ${binaryName}: ${names.join(', ')}`);
  return info;
}

// `allowScripts` in the project's package.json (what `npm install-scripts
// approve` writes), edited directly: no shell quoting of JSON on Windows.
function allowScripts(dir) {
  const file = path.join(dir, 'package.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  json.allowScripts = { ...(json.allowScripts || {}), [pkg.name]: true };
  fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
}

/** An empty project in `dir` that installs the tarballs, install script approved, offline. */
function npmInstall(dir, tarballs, extraEnv) {
  fs.mkdirSync(dir, { recursive: true });
  run(NPM, ['init', '-y'], { cwd: dir });
  // What a user does once npm blocks unreviewed install scripts (npm 11
  // runs them with a notice): approve this package's.
  allowScripts(dir);
  // Local tarballs with no registry dependencies: no network needed.
  return run(NPM, ['install', '--offline', '--foreground-scripts', '--no-audit', '--no-fund', ...tarballs], {
    cwd: dir,
    env: cleanEnv(extraEnv),
  });
}

const SMOKE_DIR = path.join(__dirname, '..', 'smoke');
const SMOKE_FILES = ['smoke.cjs', 'smoke.mjs'];

/** Copies the smoke programs (scripts/smoke/) into an installed project, where they resolve the package. */
function copySmoke(appDir) {
  for (const f of SMOKE_FILES) fs.copyFileSync(path.join(SMOKE_DIR, f), path.join(appDir, f));
}

/** Runs smoke.cjs with `runtime`; returns the .node files it loaded, relative to the project. */
function runSmokeCjs(appDir, runtime = process.execPath) {
  const { stdout } = run(runtime, ['smoke.cjs'], { cwd: appDir });
  const res = JSON.parse(stdout.trim().split('\n').pop());
  return res.native.map((f) => path.relative(appDir, f).replace(/\\/g, '/'));
}

function runSmokeMjs(appDir, runtime = process.execPath) {
  run(runtime, ['smoke.mjs'], { cwd: appDir });
}

module.exports = {
  ROOT,
  pkg,
  NPM,
  cleanEnv,
  run,
  npmPack,
  loadedBinary,
  abiOf,
  platformPackageName,
  packPlatformPackage,
  allowScripts,
  npmInstall,
  copySmoke,
  runSmokeCjs,
  runSmokeMjs,
};
