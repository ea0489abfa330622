#!/usr/bin/env node
'use strict'

// `npm run test:package`: installs the package for real, as a user would.
//
//   1. builds the addon for this platform (scripts/build-native.js, cargo),
//      `npm pack`s the main package and a platform package made from
//      npm/<platform>/ plus that binary;
//   2. in an empty folder: `npm init -y`, `npm install` both tarballs,
//      `require` and `import` it, runs a lease/return/displace scenario over
//      loopback sockets, and type-checks a TypeScript consumer against the
//      installed types;
//   3. in another empty folder, only the main tarball: its install script
//      must build the addon from the shipped Rust sources with cargo (into
//      target/package-test/ here, so later runs reuse it), and the same
//      scenario must pass on that build;
//   4. asserts the main tarball's file list;
//   5. checks the failure paths: with the install script skipped, require()
//      throws an error naming the platform and the source build; without
//      cargo, the install fails and says so.
//
// Ends with `package: N passed, M failed`; exit code 1 on any failure.
// CALLOSUM_TEST_PACKAGE_KEEP=1 keeps the temporary folder.

const { spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const platform = require('./platform.js')

const ROOT = path.resolve(__dirname, '..')
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
const ABI = platform.platformArchABI()
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const results = []
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'callosum-package-'))

function log(msg) {
  console.log(msg)
}

function record(name, ok, detail) {
  results.push({ name, ok, detail })
  log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `\n      ${String(detail).split('\n').join('\n      ')}` : ''}`)
  return ok
}

function check(name, fn) {
  try {
    const detail = fn()
    return record(name, true, typeof detail === 'string' ? detail : '')
  } catch (e) {
    return record(name, false, e && e.message ? e.message : String(e))
  }
}

// The environment of the nested npm and node runs: nothing inherited from
// the `npm run` that started this script may steer them.
function cleanEnv(extra = {}) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'INIT_CWD' || k === 'NODE_OPTIONS') continue
    if (k === 'CALLOSUM_BUILD_FROM_SOURCE' || k === 'CALLOSUM_SKIP_BUILD' || k === 'NAPI_RS_NATIVE_LIBRARY_PATH') continue
    if (k === 'CARGO_TARGET_DIR' || k === 'CARGO_BUILD_TARGET_DIR') continue
    env[k] = v
  }
  env.npm_config_audit = 'false'
  env.npm_config_fund = 'false'
  env.npm_config_update_notifier = 'false'
  return { ...env, ...extra }
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    shell: process.platform === 'win32',
    ...opts,
    env: opts.env || cleanEnv(),
  })
  const out = `${r.stdout || ''}${r.stderr || ''}`
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`)
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${out.split('\n').slice(-40).join('\n')}`)
  }
  return { stdout: r.stdout || '', stderr: r.stderr || '', out }
}

function npmPack(dir) {
  const { stdout } = run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: dir })
  const info = JSON.parse(stdout.slice(stdout.indexOf('[')))[0]
  return { ...info, path: path.join(tmp, info.filename) }
}

// `allowScripts` in the project's package.json (what `npm install-scripts
// approve` writes), edited directly: no shell quoting of JSON on Windows.
function allowScripts(dir) {
  const file = path.join(dir, 'package.json')
  const json = JSON.parse(fs.readFileSync(file, 'utf8'))
  json.allowScripts = { ...(json.allowScripts || {}), [pkg.name]: true }
  fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`)
}

function npmInstall(dir, tarballs, extraEnv) {
  fs.mkdirSync(dir, { recursive: true })
  run(NPM, ['init', '-y'], { cwd: dir })
  // What a user does once npm blocks unreviewed install scripts (npm 11
  // runs them with a notice): approve this package's.
  allowScripts(dir)
  // Local tarballs with no registry dependencies: no network needed.
  return run(NPM, ['install', '--offline', '--foreground-scripts', '--no-audit', '--no-fund', ...tarballs], {
    cwd: dir,
    env: cleanEnv(extraEnv),
  })
}

// ---------------------------------------------------------------------------
// The scenario run inside the installed projects.

const SCENARIO_CJS = String.raw`
'use strict'
const assert = require('assert')
const net = require('net')
const { EventEmitter } = require('events')
const CallosumClient = require('callosum-client-tcp')

function nativeFile() {
  return Object.keys(require.cache).filter((f) => f.endsWith('.node'))
}

async function main() {
  assert.strictEqual(typeof CallosumClient, 'function', 'module.exports is the constructor (C1)')
  assert.strictEqual(CallosumClient.CallosumClient, CallosumClient, '.CallosumClient')
  assert.strictEqual(CallosumClient.default, CallosumClient, '.default')

  const peers = []
  const server = net.createServer((s) => { s.on('error', () => {}); peers.push(s) })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  const connect = () => new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
  const [a, b, c, d] = await Promise.all([connect(), connect(), connect(), connect()])

  const client = new CallosumClient({ MAX_SLOTS: 2 })
  assert.ok(client instanceof EventEmitter, 'an EventEmitter (C2)')
  assert.strictEqual(client.MAX_SLOTS, 2)
  const errors = []
  client.on('error', (e) => errors.push(e))

  client.newConnection(4, a)
  client.newConnection(1, b)
  assert.strictEqual(client.slotCount, 2)
  assert.strictEqual(client.getConnection(), b, 'lends the lowest slot (C3)')
  assert.strictEqual(client.getConnection(), a)
  assert.strictEqual(client.getConnection(), undefined, 'nothing idle')
  client.returnConnection(b)

  client.newConnection(2, c) // displaces a (slot 4, leased)
  assert.strictEqual(client.slotCount, 2, 'displacing keeps MAX_SLOTS (C4)')
  assert.strictEqual(a.destroyed, false, 'a leased displaced socket lives until returned')
  client.returnConnection(a)
  assert.strictEqual(a.destroyed, true, 'returned displaced socket destroyed (C5)')

  client.newConnection(9, d) // worse than every kept slot: refused
  assert.strictEqual(d.destroyed, true, 'a higher slot offered to a full pool is destroyed (C4)')
  assert.strictEqual(client.slotCount, 2)

  assert.strictEqual(client.getConnection(), b)
  assert.strictEqual(client.getConnection(), c)
  client.returnConnection(c)
  client.returnConnection(b)
  assert.strictEqual(errors.length, 0, 'no error events: ' + errors.map((e) => e.message).join('; '))

  if (typeof client.close === 'function') {
    client.close()
    assert.strictEqual(client.getConnection(), undefined, 'closed pool lends nothing (E1)')
    assert.strictEqual(b.destroyed && c.destroyed, true, 'close destroys idle sockets (E1)')
  }
  for (const s of [a, b, c, d]) s.destroy()
  for (const s of peers) s.destroy()
  await new Promise((resolve) => server.close(resolve))
  process.stdout.write(JSON.stringify({ ok: true, native: nativeFile() }) + '\n')
}

main().catch((e) => { console.error(e && e.stack || e); process.exit(1) })
`

const SCENARIO_MJS = String.raw`
import assert from 'node:assert'
import { createRequire } from 'node:module'
import CallosumClient from 'callosum-client-tcp'
import * as ns from 'callosum-client-tcp'

const require = createRequire(import.meta.url)
assert.strictEqual(typeof CallosumClient, 'function', 'default export is the constructor')
assert.strictEqual(CallosumClient, require('callosum-client-tcp'), 'import and require give the same class')
assert.strictEqual(ns.CallosumClient, CallosumClient, 'named export CallosumClient')
const client = new CallosumClient()
assert.strictEqual(client.MAX_SLOTS, 100)
assert.strictEqual(client.getConnection(), undefined)
if (typeof client.close === 'function') client.close()
process.stdout.write(JSON.stringify({ ok: true }) + '\n')
`

// The type-test consumers (__test__/types/consumer.cts and .mts) are
// compiled again in the installed project, against the installed types,
// resolved through the package's `exports` the way a user's project does.
const CONSUMERS = ['consumer.cts', 'consumer.mts']

// ---------------------------------------------------------------------------

function fileList(info) {
  return info.files.map((f) => ({ path: f.path.replace(/\\/g, '/'), size: f.size }))
}

function workspaceMembers() {
  const toml = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8')
  const m = /\[workspace\][^[]*?members\s*=\s*\[([^\]]*)\]/s.exec(toml)
  if (!m) return []
  return [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1])
}

function gitFiles(dir) {
  const r = spawnSync('git', ['ls-files', dir], { cwd: ROOT, encoding: 'utf8' })
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean) : []
}

function assertTarball(files) {
  const names = new Set(files.map((f) => f.path))
  const required = [
    'package.json',
    'README.md',
    'LICENSE',
    'index.js',
    'index.mjs',
    'index.d.ts',
    'binding.js',
    'scripts/install.js',
    'scripts/build-native.js',
    'scripts/platform.js',
    'build.rs',
    'Cargo.toml',
    'Cargo.lock',
    'src/lib.rs',
    ...workspaceMembers().map((m) => `${m}/Cargo.toml`),
    ...gitFiles('lib').filter((f) => /\.(c|m)?js$|\.d\.ts$/.test(f)),
    ...gitFiles('src'),
  ]
  if (fs.existsSync(path.join(ROOT, 'binding.d.ts'))) required.push('binding.d.ts')
  for (const m of workspaceMembers()) {
    required.push(...gitFiles(`${m}/src`), ...gitFiles(`${m}/build.rs`))
  }
  const missing = [...new Set(required)].filter((f) => !names.has(f))
  const forbidden = [
    [/(^|\/)__test__\//, 'tests'],
    [/(^|\/)tests?\//, 'tests'],
    [/(^|\/)(benches|examples)\//, 'benches or examples'],
    [/\.(test|spec)\.(c|m)?[jt]s$/, 'tests'],
    [/(^|\/)target\//, 'a cargo target dir'],
    [/^bench\//, 'bench'],
    [/(^|\/)bench\/out\//, 'bench output'],
    [/\.node$/, 'a native binary'],
    [/^npm\//, 'platform package folders'],
    [/^examples\//, 'examples'],
    [/^\.(github|ci)\//, 'CI files'],
    [/^scripts\/test-package\.js$/, 'this test'],
    [/\.tgz$/, 'a tarball'],
    [/^node_modules\//, 'node_modules'],
    [/^docs\//, 'docs'],
  ]
  const bad = files
    .map((f) => [f.path, forbidden.find(([re]) => re.test(f.path))])
    .filter(([, hit]) => hit)
    .map(([p, [, why]]) => `${p} (${why})`)
  const problems = []
  if (missing.length) problems.push(`missing: ${missing.join(', ')}`)
  if (bad.length) problems.push(`must not ship: ${bad.join(', ')}`)
  if (problems.length) throw new Error(problems.join('\n'))
}

function runScenario(appDir, expectNativeIn) {
  fs.writeFileSync(path.join(appDir, 'scenario.cjs'), SCENARIO_CJS)
  const { stdout } = run(process.execPath, ['scenario.cjs'], { cwd: appDir })
  const res = JSON.parse(stdout.trim().split('\n').pop())
  const native = res.native.map((f) => path.relative(appDir, f).replace(/\\/g, '/'))
  if (!native.some((f) => f.startsWith(expectNativeIn))) {
    throw new Error(`the addon loaded from ${native.join(', ') || 'nowhere'}, expected ${expectNativeIn}`)
  }
  return `addon: ${native.join(', ')}`
}

function main() {
  log(`test:package for ${pkg.name}@${pkg.version} on ${platform.describePlatform()} (${ABI}), in ${tmp}`)
  const binaryName = platform.localBinaryName(ABI)
  const platformDir = path.join(ROOT, 'npm', ABI)

  // 1. The binary of this tree, then both tarballs.
  const built = check(`build the addon for ${ABI} with cargo`, () => {
    run(process.execPath, [path.join(__dirname, 'build-native.js')], { cwd: ROOT, env: cleanEnv() })
    return `${binaryName}: ${fs.statSync(path.join(ROOT, binaryName)).size} bytes`
  })

  let main = null
  check('npm pack the main package', () => {
    main = npmPack(ROOT)
    return `${main.filename}: ${main.size} bytes packed, ${main.unpackedSize} unpacked, ${main.entryCount} files`
  })

  let plat = null
  if (!fs.existsSync(platformDir)) {
    record(`platform package npm/${ABI}`, false, `no npm/${ABI}/ folder: this platform has no prebuilt package`)
  } else if (built) {
    check(`npm pack the platform package ${platform.platformPackageName(ABI)}`, () => {
      const stage = path.join(tmp, 'platform-package')
      fs.mkdirSync(stage)
      for (const f of fs.readdirSync(platformDir)) fs.copyFileSync(path.join(platformDir, f), path.join(stage, f))
      fs.copyFileSync(path.join(ROOT, binaryName), path.join(stage, binaryName))
      const ppkg = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'))
      if (ppkg.name !== platform.platformPackageName(ABI)) throw new Error(`npm/${ABI}/package.json is named ${ppkg.name}`)
      if (ppkg.version !== pkg.version) throw new Error(`npm/${ABI} is version ${ppkg.version}, the package ${pkg.version}`)
      if (ppkg.main !== binaryName) throw new Error(`npm/${ABI}/package.json main is ${ppkg.main}, expected ${binaryName}`)
      plat = npmPack(stage)
      const names = fileList(plat).map((f) => f.path)
      if (!names.includes(binaryName)) throw new Error(`the platform tarball lacks ${binaryName}: ${names.join(', ')}`)
      return `${plat.filename}: ${names.join(', ')}`
    })
  }

  // 4 (first, it needs nothing installed). The tarball's file list.
  if (main) {
    const files = fileList(main)
    log(`\nmain tarball ${main.filename} (${main.size} bytes packed, ${main.unpackedSize} unpacked):`)
    for (const f of files) log(`  ${String(f.size).padStart(8)}  ${f.path}`)
    log('')
    check('main tarball ships what a user and a source build need, and nothing else', () => assertTarball(files))
  }

  // 2. Main + platform package: the prebuilt path.
  if (main && plat) {
    const app = path.join(tmp, 'app-prebuilt')
    const ok = check('npm install main + platform tarballs in an empty project', () => {
      const { out } = npmInstall(app, [main.path, plat.path])
      if (/building the native addon from source/.test(out)) throw new Error(`the install script built from source although the platform package was installed:\n${out}`)
      const stray = fs.readdirSync(path.join(app, 'node_modules', pkg.name)).filter((f) => f.endsWith('.node'))
      if (stray.length) throw new Error(`unexpected binaries in the main package: ${stray.join(', ')}`)
    })
    if (ok) {
      check('require(): lease/return/displace over loopback, addon from the platform package', () =>
        runScenario(app, `node_modules/${platform.platformPackageName(ABI)}/${binaryName}`),
      )
      check('import (ESM): default and named export', () => {
        fs.writeFileSync(path.join(app, 'scenario.mjs'), SCENARIO_MJS)
        run(process.execPath, ['scenario.mjs'], { cwd: app })
      })
      check('TypeScript: the type-test consumers compile against the installed package (tsc --noEmit)', () => {
        const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
        const typeRoots = path.join(ROOT, 'node_modules', '@types')
        if (!fs.existsSync(tsc)) throw new Error('typescript is not installed in the repository (npm install)')
        if (!fs.existsSync(path.join(typeRoots, 'node'))) throw new Error('@types/node is not installed in the repository (npm install)')
        for (const f of CONSUMERS) fs.copyFileSync(path.join(ROOT, '__test__', 'types', f), path.join(app, f))
        run(process.execPath, [
          tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022',
          '--lib', 'es2022', '--typeRoots', typeRoots, '--types', 'node', ...CONSUMERS,
        ], { cwd: app })
        return CONSUMERS.join(', ')
      })
    }
  }

  // 3. Main tarball only: the source build path.
  if (main) {
    const app = path.join(tmp, 'app-source')
    const targetDir = path.join(ROOT, 'target', 'package-test')
    const ok = check('npm install the main tarball alone: its install script builds the addon with cargo', () => {
      const t0 = Date.now()
      const { out } = npmInstall(app, [main.path], { CARGO_TARGET_DIR: targetDir })
      if (!/built from source and loaded/.test(out)) throw new Error(`the install script did not report a source build:\n${out.split('\n').slice(-30).join('\n')}`)
      const local = path.join(app, 'node_modules', pkg.name, binaryName)
      if (!fs.existsSync(local)) throw new Error(`no ${binaryName} in the installed package`)
      if (fs.existsSync(path.join(app, 'node_modules', pkg.name, 'target'))) throw new Error('the build left a target/ inside node_modules although CARGO_TARGET_DIR was set')
      return `built in ${((Date.now() - t0) / 1000).toFixed(1)} s (CARGO_TARGET_DIR=${path.relative(ROOT, targetDir)})`
    })
    if (ok) {
      check('require(): lease/return/displace over loopback, addon built from source', () =>
        runScenario(app, `node_modules/${pkg.name}/${binaryName}`),
      )
    }
  }

  // 5. The failure paths: no binary and no build (npm skipped the install
  // script), and no cargo on PATH.
  if (main) {
    const app = path.join(tmp, 'app-no-scripts')
    check('no binary (install script skipped): require() throws an error naming the platform and the source build', () => {
      fs.mkdirSync(app, { recursive: true })
      run(NPM, ['init', '-y'], { cwd: app })
      run(NPM, ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', main.path], { cwd: app })
      const probe = "try { require('callosum-client-tcp'); console.log('LOADED') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }"
      const { stdout } = run(process.execPath, ['-e', probe], { cwd: app })
      if (stdout.includes('LOADED')) throw new Error('it loaded without any binary')
      const e = JSON.parse(stdout.trim().split('\n').pop())
      if (e.code !== 'ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND') throw new Error(`code ${e.code}: ${e.message}`)
      for (const want of [ABI, process.platform, process.arch, 'cargo', 'scripts/install.js']) {
        if (!e.message.includes(want)) throw new Error(`the message does not mention ${want}:\n${e.message}`)
      }
      return e.message.split('\n')[0]
    })

    const cargoDirs = (process.env.PATH || '').split(path.delimiter).filter((d) => {
      return ['cargo', 'cargo.exe'].some((c) => fs.existsSync(path.join(d, c)))
    })
    const pathWithoutCargo = (process.env.PATH || '').split(path.delimiter).filter((d) => !cargoDirs.includes(d)).join(path.delimiter)
    const nodeDir = path.dirname(process.execPath)
    if (cargoDirs.includes(nodeDir)) {
      record('no cargo: the install fails with a clear message', true, 'skipped: node and cargo share a directory on PATH')
    } else {
      check('no cargo and no prebuilt binary: npm install fails, naming the platform and how to build', () => {
        const dir = path.join(tmp, 'app-no-cargo')
        fs.mkdirSync(dir, { recursive: true })
        run(NPM, ['init', '-y'], { cwd: dir })
        allowScripts(dir)
        const r = spawnSync(NPM, ['install', '--offline', '--foreground-scripts', '--no-audit', '--no-fund', main.path], {
          cwd: dir,
          encoding: 'utf8',
          shell: process.platform === 'win32',
          env: cleanEnv({ PATH: pathWithoutCargo, CARGO: '', RUSTC: '' }),
        })
        const out = `${r.stdout}${r.stderr}`
        if (r.status === 0) throw new Error(`npm install succeeded without cargo:\n${out}`)
        for (const want of ['cargo was not found', ABI, 'rustup.rs']) {
          if (!out.includes(want)) throw new Error(`the output does not mention ${want}:\n${out.split('\n').slice(-25).join('\n')}`)
        }
        return out.split('\n').find((l) => l.includes('cargo was not found')).trim()
      })
    }
  }

  const passed = results.filter((r) => r.ok).length
  const failed = results.length - passed
  log(`\n${failed ? 'FAILED' : 'OK'}: ${results.length} checks${failed ? `; failed: ${results.filter((r) => !r.ok).map((r) => r.name).join('; ')}` : ''}`)
  if (failed || process.env.CALLOSUM_TEST_PACKAGE_KEEP) log(`kept ${tmp}`)
  else fs.rmSync(tmp, { recursive: true, force: true })
  log(`package: ${passed} passed, ${failed} failed`)
  return failed ? 1 : 0
}

process.exitCode = main()
