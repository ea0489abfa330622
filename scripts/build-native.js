#!/usr/bin/env node
'use strict'

// Builds the native addon from source with cargo alone (no @napi-rs/cli: a
// user's `npm install` has no devDependencies), then copies the library to
// `callosum-client-tcp.<platform-arch-abi>.node` next to package.json, where
// binding.js looks first.
//
//   node scripts/build-native.js            release build
//   node scripts/build-native.js --debug    dev profile
//
// Honours CARGO_TARGET_DIR / CARGO_BUILD_TARGET_DIR (and any target-dir set
// in a cargo config): the library is taken from the path cargo reports, not
// guessed. Builds for the same target triple as `napi build --platform`, so
// both share target/<triple>/.

const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')
const platform = require('./platform.js')

const ROOT = path.resolve(__dirname, '..')
const CRATE = 'callosum-client-tcp'
const LIB_TARGET = 'callosum_client_tcp'

class BuildError extends Error {
  constructor(message, code) {
    super(message)
    this.code = code
  }
}

function cargoCommand() {
  return process.env.CARGO || 'cargo'
}

function howToGetRust(abi) {
  return (
    `To build ${CRATE} for ${platform.describePlatform()} (${abi}) from source, install Rust ` +
    '(stable cargo and rustc: https://rustup.rs, or your system package manager), then run ' +
    `\`node scripts/install.js\` in ${ROOT} (or \`npm rebuild ${CRATE}\` from your project).`
  )
}

function checkCargo(abi) {
  const r = spawnSync(cargoCommand(), ['--version'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) {
    const why = r.error && r.error.code === 'ENOENT' ? 'cargo was not found on PATH' : `\`cargo --version\` failed: ${(r.error && r.error.message) || r.stderr}`
    throw new BuildError(`${CRATE}: cannot build the native addon from source: ${why}.\n${howToGetRust(abi)}`, 'ERR_CALLOSUM_NO_CARGO')
  }
  return r.stdout.trim()
}

function rustHostTriple() {
  const r = spawnSync(process.env.RUSTC || 'rustc', ['-vV'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return null
  const m = /^host:\s*(\S+)/m.exec(r.stdout)
  return m ? m[1] : null
}

/**
 * The --target to build for: the triple of this Node.js process's platform
 * (what `napi build --platform` uses), or rustc's default for a platform
 * napi-rs has no name for. CALLOSUM_CARGO_TARGET overrides it.
 */
function chooseTarget(abi) {
  if (process.env.CALLOSUM_CARGO_TARGET) return process.env.CALLOSUM_CARGO_TARGET
  return platform.TRIPLES[abi] || null
}

function insideNodeModules() {
  return ROOT.split(path.sep).includes('node_modules')
}

function build({ debug = false, log = console.error } = {}) {
  const abi = platform.platformArchABI()
  const cargoVersion = checkCargo(abi)
  const target = chooseTarget(abi)
  const args = ['build', '-p', CRATE, '--message-format=json-render-diagnostics']
  if (!debug) args.push('--release')
  if (target) args.push('--target', target)
  // Installed from the registry: build exactly the locked dependency versions.
  const installed = insideNodeModules()
  if (installed && fs.existsSync(path.join(ROOT, 'Cargo.lock'))) args.push('--locked')

  const env = { ...process.env }
  if (target && target.includes('musl')) {
    // musl targets link statically by default, and then cargo drops cdylib
    // outputs (napi build adds the same flag).
    const flags = env.RUSTFLAGS || env.CARGO_BUILD_RUSTFLAGS || ''
    if (!flags.includes('target-feature=-crt-static')) env.RUSTFLAGS = `${flags} -C target-feature=-crt-static`.trim()
  }
  const ownTargetDir = installed && !env.CARGO_TARGET_DIR && !env.CARGO_BUILD_TARGET_DIR

  log(`${CRATE}: building the native addon from source for ${abi}${target ? ` (${target})` : ''} with ${cargoVersion}`)
  log(`  ${cargoCommand()} ${args.join(' ')}`)
  const r = spawnSync(cargoCommand(), args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  })
  if (r.error) throw new BuildError(`${CRATE}: could not run cargo: ${r.error.message}\n${howToGetRust(abi)}`, 'ERR_CALLOSUM_BUILD_FAILED')

  let library = null
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      continue
    }
    if (msg.reason !== 'compiler-artifact' || !msg.target || msg.target.name !== LIB_TARGET) continue
    if (!msg.target.kind.includes('cdylib')) continue
    library = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) || library
  }
  if (r.status !== 0) {
    const host = rustHostTriple()
    const cross = target && host && target !== host ? `\nrustc's host is ${host}: the ${target} standard library may be missing (\`rustup target add ${target}\`).` : ''
    throw new BuildError(
      `${CRATE}: \`cargo ${args.join(' ')}\` failed (exit ${r.status}); its messages are above.${cross}\n${howToGetRust(abi)}`,
      'ERR_CALLOSUM_BUILD_FAILED',
    )
  }
  if (!library || !fs.existsSync(library)) {
    throw new BuildError(`${CRATE}: cargo finished but reported no cdylib for ${LIB_TARGET}`, 'ERR_CALLOSUM_BUILD_FAILED')
  }

  // Copy then rename: never a half-written .node, and a process that has the
  // old one mapped keeps its (unlinked) copy.
  const dest = path.join(ROOT, platform.localBinaryName(abi))
  const tmp = `${dest}.${process.pid}.tmp`
  fs.copyFileSync(library, tmp)
  fs.renameSync(tmp, dest)
  log(`${CRATE}: ${path.relative(ROOT, library) || library} -> ${path.basename(dest)}`)

  if (ownTargetDir) {
    // A dependency's own build tree is hundreds of MB nobody reuses.
    fs.rmSync(path.join(ROOT, 'target'), { recursive: true, force: true })
  }
  return dest
}

module.exports = { build, BuildError }

if (require.main === module) {
  try {
    build({ debug: process.argv.includes('--debug') })
  } catch (e) {
    console.error(e.message)
    process.exit(1)
  }
}
