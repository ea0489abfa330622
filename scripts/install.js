#!/usr/bin/env node
'use strict';

// npm's `install` hook, for a user's project and for a fresh clone alike:
// nothing to do when the native addon loads (a local build, or the prebuilt
// platform package); otherwise build it from source with cargo and check that
// it loads.
//
// Not `napi build`: @napi-rs/cli is a devDependency, absent from a user's
// install, where a source build has only cargo. So this is the minimal part of
// it a source build needs: `cargo build --release` of the addon crate, and the
// library copied to the file name the generated loader looks for first
// (`callosum-client-tcp.<platform>.node`, taken from the loader's own
// not-found error, so the naming stays napi-rs's alone).
//
//   node scripts/install.js            check, build if nothing loads
//   node scripts/install.js --build    build even if something loads
//                                      (also CALLOSUM_BUILD_FROM_SOURCE=1 or
//                                      npm install --build-from-source)
//   node scripts/install.js --debug    dev profile (with --build)
// Environment: CALLOSUM_SKIP_BUILD=1 never builds; CALLOSUM_CARGO_TARGET=<triple>
// builds for that target instead of cargo's host; CARGO_TARGET_DIR is honoured
// (cargo reports where the library is). A build inside node_modules without
// CARGO_TARGET_DIR removes its target/ afterwards.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const NAME = 'callosum-client-tcp';
const LIB_TARGET = 'callosum_client_tcp';
const argv = process.argv.slice(2);
const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v !== 'false';

// Loads binding.js in a fresh process (this script with --probe: a clean
// require cache, and a crashing binary cannot take this script down) and
// reports the loader's verdict, with napi-rs's local file name for this
// platform: from the loader's not-found error, or from the binary that loaded
// (a platform package's binary has the same name).
function probe() {
  const r = spawnSync(process.execPath, [__filename, '--probe'], { encoding: 'utf8' });
  try {
    return JSON.parse((r.stdout || '').trim().split('\n').pop());
  } catch {
    return { ok: false, message: (r.stderr || '').trim() || `exit ${r.status ?? r.signal}` };
  }
}

function probeHere() {
  try {
    require('../binding.js');
    const m = Object.keys(require.cache)
      .map((f) => new RegExp(`(${NAME}\\.([\\w-]+)\\.node)$`).exec(f))
      .find(Boolean);
    return { ok: true, localFile: m?.[1], platform: m?.[2] };
  } catch (e) {
    return { ok: false, message: e.message, platform: e.platform, localFile: e.localFile };
  }
}

function fail(message) {
  const err = new Error(message);
  err.userFacing = true;
  return err;
}

function howToGetRust(platform) {
  return (
    `To build ${NAME} for ${platform} from source, install Rust (stable cargo and rustc: https://rustup.rs, ` +
    `or your system package manager), then run \`node scripts/install.js\` in ${ROOT} ` +
    `(or \`npm rebuild ${NAME}\` from your project).`
  );
}

function build(localFile, platform, debug) {
  const cargo = process.env.CARGO || 'cargo';
  const version = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    const why =
      version.error && version.error.code === 'ENOENT'
        ? 'cargo was not found on PATH'
        : `\`cargo --version\` failed: ${version.error?.message || version.stderr}`;
    throw fail(`${NAME}: cannot build the native addon from source: ${why}.\n${howToGetRust(platform)}`);
  }
  const args = ['build', '-p', NAME, '--message-format=json-render-diagnostics'];
  if (!debug) args.push('--release');
  if (process.env.CALLOSUM_CARGO_TARGET) args.push('--target', process.env.CALLOSUM_CARGO_TARGET);
  // Installed from the registry: exactly the locked dependency versions.
  const installed = ROOT.split(path.sep).includes('node_modules');
  if (installed) args.push('--locked');
  const env = { ...process.env };
  if (platform.includes('musl')) {
    // musl links statically by default, and then cargo drops cdylib outputs
    // (napi build adds the same flag).
    const flags = env.RUSTFLAGS || '';
    if (!flags.includes('crt-static')) env.RUSTFLAGS = `${flags} -C target-feature=-crt-static`.trim();
  }
  console.error(
    `${NAME}: building the native addon for ${platform} with ${version.stdout.trim()}\n  ${cargo} ${args.join(' ')}`,
  );
  const r = spawnSync(cargo, args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error || r.status !== 0) {
    throw fail(
      `${NAME}: \`cargo ${args.join(' ')}\` failed (${r.error ? r.error.message : `exit ${r.status}`}); its messages are above.\n${howToGetRust(platform)}`,
    );
  }
  // The library's path as cargo reports it: target dirs and triples vary.
  let library = null;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{"reason":"compiler-artifact"')) continue;
    const msg = JSON.parse(line);
    if (msg.target.name === LIB_TARGET && msg.target.kind.includes('cdylib')) {
      library = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) || library;
    }
  }
  if (!library) throw fail(`${NAME}: cargo finished but reported no cdylib for ${LIB_TARGET}`);
  // Copy then rename: never a half-written .node, and a process that has the
  // old one mapped keeps its (unlinked) copy.
  const dest = path.join(ROOT, localFile);
  fs.copyFileSync(library, `${dest}.${process.pid}.tmp`);
  fs.renameSync(`${dest}.${process.pid}.tmp`, dest);
  console.error(`${NAME}: ${library} -> ${localFile}`);
  // A dependency's own build tree is hundreds of MB nobody reuses.
  if (installed && !env.CARGO_TARGET_DIR && !env.CARGO_BUILD_TARGET_DIR)
    fs.rmSync(path.join(ROOT, 'target'), { recursive: true, force: true });
}

function main() {
  if (truthy(process.env.CALLOSUM_SKIP_BUILD)) {
    console.error(`${NAME}: CALLOSUM_SKIP_BUILD is set, not checking or building the native addon`);
    return 0;
  }
  const force =
    argv.includes('--build') ||
    truthy(process.env.CALLOSUM_BUILD_FROM_SOURCE) ||
    truthy(process.env.npm_config_build_from_source);
  const before = probe();
  if (before.ok && !force) return 0;
  if (!before.localFile) {
    // The loader named no local file (an unsupported platform, a failure
    // before it looked, or a binary from NAPI_RS_NATIVE_LIBRARY_PATH):
    // nothing to build into.
    console.error(
      before.ok
        ? `${NAME}: cannot tell which file to build: the addon loaded from elsewhere (NAPI_RS_NATIVE_LIBRARY_PATH?)`
        : before.message,
    );
    return 1;
  }
  console.error(
    before.ok
      ? `${NAME}: building the native addon from source, as asked.`
      : `${NAME}: no prebuilt native addon loads here, building it from source.`,
  );
  try {
    build(before.localFile, before.platform, argv.includes('--debug'));
  } catch (e) {
    if (!e.userFacing) throw e;
    console.error(e.message);
    return 1;
  }
  const after = probe();
  if (!after.ok) {
    console.error(`${NAME}: the native addon was built but does not load:\n${after.message}`);
    return 1;
  }
  console.error(`${NAME}: native addon built from source and loaded.`);
  return 0;
}

if (argv[0] === '--probe') console.log(JSON.stringify(probeHere()));
else process.exitCode = main();
