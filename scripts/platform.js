'use strict'

// Which native binary fits this Node.js process, named the way napi-rs names
// them: `callosum-client-tcp.<platform-arch-abi>.node` next to package.json,
// or the package `callosum-client-tcp-<platform-arch-abi>`.
//
// Shared by binding.js (the loader), scripts/install.js and
// scripts/build-native.js (the source build). Node built-ins only: it runs
// during `npm install`, before (or without) any devDependency.

const { readFileSync } = require('fs')

const BINARY_NAME = 'callosum-client-tcp'
const PACKAGE_NAME = 'callosum-client-tcp'

// platform-arch-abi -> Rust target triple. The prebuilt ones are the targets
// in package.json's `napi.targets`; the others can still be built from source.
const TRIPLES = {
  'linux-x64-gnu': 'x86_64-unknown-linux-gnu',
  'linux-x64-musl': 'x86_64-unknown-linux-musl',
  'linux-arm64-gnu': 'aarch64-unknown-linux-gnu',
  'linux-arm64-musl': 'aarch64-unknown-linux-musl',
  'linux-arm-gnueabihf': 'armv7-unknown-linux-gnueabihf',
  'linux-arm-musleabihf': 'armv7-unknown-linux-musleabihf',
  'linux-riscv64-gnu': 'riscv64gc-unknown-linux-gnu',
  'linux-riscv64-musl': 'riscv64gc-unknown-linux-musl',
  'linux-loong64-gnu': 'loongarch64-unknown-linux-gnu',
  'linux-loong64-musl': 'loongarch64-unknown-linux-musl',
  'linux-ppc64-gnu': 'powerpc64le-unknown-linux-gnu',
  'linux-s390x-gnu': 's390x-unknown-linux-gnu',
  'darwin-x64': 'x86_64-apple-darwin',
  'darwin-arm64': 'aarch64-apple-darwin',
  'win32-x64-msvc': 'x86_64-pc-windows-msvc',
  'win32-x64-gnu': 'x86_64-pc-windows-gnu',
  'win32-ia32-msvc': 'i686-pc-windows-msvc',
  'win32-arm64-msvc': 'aarch64-pc-windows-msvc',
  'freebsd-x64': 'x86_64-unknown-freebsd',
  'freebsd-arm64': 'aarch64-unknown-freebsd',
  'android-arm64': 'aarch64-linux-android',
  'android-arm-eabi': 'armv7-linux-androideabi',
}

// Same order of evidence as the loader napi-rs generates: /usr/bin/ldd's
// text, then the process report, then `ldd --version`.
let muslCache = null
function isMusl() {
  if (process.platform !== 'linux') return false
  if (muslCache !== null) return muslCache
  let musl = null
  try {
    musl = readFileSync('/usr/bin/ldd', 'utf-8').includes('musl')
  } catch {
    musl = null
  }
  if (musl === null && process.report && typeof process.report.getReport === 'function') {
    try {
      process.report.excludeNetwork = true
      const report = process.report.getReport()
      const header = typeof report === 'string' ? JSON.parse(report).header : report.header
      const shared = typeof report === 'string' ? JSON.parse(report).sharedObjects : report.sharedObjects
      if (header && header.glibcVersionRuntime) musl = false
      else if (Array.isArray(shared)) musl = shared.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))
    } catch {
      musl = null
    }
  }
  if (musl === null) {
    try {
      musl = require('child_process').execSync('ldd --version 2>&1', { encoding: 'utf8' }).includes('musl')
    } catch (e) {
      musl = String((e && e.stdout) || '').includes('musl')
    }
  }
  muslCache = musl
  return musl
}

function isWindowsGnu() {
  const v = process.config && process.config.variables
  return Boolean(v && (v.shlib_suffix === 'dll.a' || v.node_target_type === 'shared_library'))
}

/** The napi-rs name of this process's platform: `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc` ... */
function platformArchABI(platform = process.platform, arch = process.arch) {
  switch (platform) {
    case 'linux':
      if (arch === 'arm') return isMusl() ? 'linux-arm-musleabihf' : 'linux-arm-gnueabihf'
      if (arch === 'ppc64' || arch === 's390x') return `linux-${arch}-gnu`
      return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
    case 'win32':
      if (arch === 'x64' && isWindowsGnu()) return 'win32-x64-gnu'
      return `win32-${arch}-msvc`
    case 'android':
      return arch === 'arm' ? 'android-arm-eabi' : `android-${arch}`
    default:
      return `${platform}-${arch}`
  }
}

/** For people: `linux x64 (glibc)`, `linux x64 (musl)`, `darwin arm64`. */
function describePlatform(platform = process.platform, arch = process.arch) {
  const libc = platform === 'linux' ? ` (${isMusl() ? 'musl' : 'glibc'})` : ''
  return `${platform} ${arch}${libc}`
}

function localBinaryName(abi = platformArchABI()) {
  return `${BINARY_NAME}.${abi}.node`
}

function platformPackageName(abi = platformArchABI()) {
  return `${PACKAGE_NAME}-${abi}`
}

/** The platform-arch-abi names of the prebuilt targets (package.json `napi.targets`). */
function prebuiltPlatforms(pkg) {
  const byTriple = Object.fromEntries(Object.entries(TRIPLES).map(([abi, triple]) => [triple, abi]))
  const targets = (pkg && pkg.napi && pkg.napi.targets) || []
  return targets.map((t) => byTriple[t] || t)
}

module.exports = {
  BINARY_NAME,
  PACKAGE_NAME,
  TRIPLES,
  isMusl,
  platformArchABI,
  describePlatform,
  localBinaryName,
  platformPackageName,
  prebuiltPlatforms,
}
