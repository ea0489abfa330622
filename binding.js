'use strict'

// The native addon loader. Hand-written (`npm run build` runs
// `napi build --no-js`, so it is never regenerated). index.js requires it and
// uses whatever the addon exports: this file re-exports the addon object as is.
//
// Looks, in order, for:
//   0. NAPI_RS_NATIVE_LIBRARY_PATH, when set (an explicit override, as in the
//      loaders napi-rs generates);
//   1. a locally built binary next to package.json,
//      `callosum-client-tcp.<platform-arch-abi>.node` (`npm run build`, or the
//      source build that `npm install` runs when no prebuilt binary fits);
//   2. the prebuilt platform package `callosum-client-tcp-<platform-arch-abi>`
//      (an optional dependency of the published package);
// and otherwise throws an Error (code ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND)
// that names the platform and says how to build from source.

const { existsSync } = require('fs')
const { join } = require('path')
const platform = require('./scripts/platform.js')

const pkg = require('./package.json')
const abi = platform.platformArchABI()
const localPath = join(__dirname, platform.localBinaryName(abi))
const packageName = platform.platformPackageName(abi)
const attempts = []

function loadLocal() {
  if (!existsSync(localPath)) {
    attempts.push(`${localPath}: not found`)
    return null
  }
  try {
    return require(localPath)
  } catch (e) {
    attempts.push(`${localPath}: failed to load: ${e.message}`)
    return null
  }
}

function loadPackage() {
  let binding
  try {
    binding = require(packageName)
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(`'${packageName}'`)) {
      attempts.push(`${packageName}: not installed`)
    } else {
      attempts.push(`${packageName}: failed to load: ${e.message}`)
    }
    return null
  }
  let version = null
  try {
    version = require(`${packageName}/package.json`).version
  } catch {
    // A package without a readable package.json: accept the binary.
  }
  if (version !== null && version !== pkg.version && process.env.NAPI_RS_ENFORCE_VERSION_CHECK !== '0') {
    attempts.push(
      `${packageName}: version ${version} does not match ${pkg.name} ${pkg.version} ` +
        '(reinstall so both come from the same release, or set NAPI_RS_ENFORCE_VERSION_CHECK=0 to use it anyway)',
    )
    return null
  }
  return binding
}

function notFound() {
  const prebuilt = platform.prebuiltPlatforms(pkg)
  const hasPrebuilt = prebuilt.includes(abi)
  const lines = [
    `${pkg.name}: no native addon could be loaded for ${platform.describePlatform()} ` +
      `(platform ${process.platform}, arch ${process.arch}, napi name ${abi}).`,
    'Tried:',
    ...attempts.map((a) => `  - ${a}`),
    hasPrebuilt
      ? `A prebuilt binary exists for this platform in the package ${packageName}, an optional dependency: ` +
        'reinstall without --omit=optional / --no-optional, and delete package-lock.json and node_modules first ' +
        'if the lock file was made on another platform (npm/cli#4828).'
      : `No prebuilt binary is published for ${abi} (prebuilt: ${prebuilt.join(', ')}).`,
    'To build it from source, install Rust and cargo (https://rustup.rs), then run in ' +
      `${__dirname}:`,
    '  node scripts/install.js',
    `or, from your project: npm rebuild ${pkg.name}` +
      ' (this builds with `cargo build --release -p callosum-client-tcp` and copies the library to ' +
      `${platform.localBinaryName(abi)}).`,
    `If npm skipped the package's install script (allowScripts), approve it first: npm install-scripts approve ${pkg.name}`,
  ]
  const err = new Error(lines.join('\n'))
  err.code = 'ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND'
  err.platform = abi
  err.attempts = attempts.slice()
  return err
}

let nativeBinding = null
if (process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
  try {
    nativeBinding = require(process.env.NAPI_RS_NATIVE_LIBRARY_PATH)
  } catch (e) {
    attempts.push(`NAPI_RS_NATIVE_LIBRARY_PATH=${process.env.NAPI_RS_NATIVE_LIBRARY_PATH}: failed to load: ${e.message}`)
  }
} else {
  nativeBinding = loadLocal() || loadPackage()
}

if (!nativeBinding) throw notFound()

module.exports = nativeBinding
