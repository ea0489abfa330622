#!/usr/bin/env node
'use strict'

// npm's `install` hook, for a user's project and for a fresh clone alike.
//
// Does nothing when a native binary loads (a local
// `callosum-client-tcp.<platform>.node`, or the prebuilt platform package
// `callosum-client-tcp-<platform>`). Otherwise builds it from source with
// cargo (scripts/build-native.js: no @napi-rs/cli, no devDependency needed),
// then checks that the result loads.
//
// Environment:
//   CALLOSUM_BUILD_FROM_SOURCE=1   build even if a prebuilt binary loads
//                                  (so does `npm install --build-from-source`)
//   CALLOSUM_SKIP_BUILD=1          never build (the loader will say what is missing)
//   CARGO_TARGET_DIR               where cargo builds (default: ./target, removed
//                                  after a build inside node_modules)

const { spawnSync } = require('child_process')
const path = require('path')

const ROOT = path.resolve(__dirname, '..')
const NAME = 'callosum-client-tcp'

function truthy(v) {
  return v !== undefined && v !== '' && v !== '0' && v !== 'false'
}

// Loads binding.js in a fresh Node.js process: a clean require cache, and a
// crash of a broken binary cannot take this script down with it.
function probe() {
  const code = `const b = require(${JSON.stringify(path.join(ROOT, 'binding.js'))}); if (!b || typeof b !== 'object') throw new Error('the addon exported nothing')`
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: process.env })
  if (r.status === 0) return { ok: true }
  const message = (r.stderr || '').trim() || (r.error && r.error.message) || `exit ${r.status}`
  return { ok: false, message }
}

function main() {
  if (truthy(process.env.CALLOSUM_SKIP_BUILD)) {
    console.error(`${NAME}: CALLOSUM_SKIP_BUILD is set, not checking or building the native addon`)
    return 0
  }
  const force = truthy(process.env.CALLOSUM_BUILD_FROM_SOURCE) || truthy(process.env.npm_config_build_from_source)
  if (!force) {
    const before = probe()
    if (before.ok) return 0
    console.error(`${NAME}: no prebuilt native addon loads here, building it from source.`)
  } else {
    console.error(`${NAME}: building the native addon from source, as asked.`)
  }

  const { build } = require('./build-native.js')
  try {
    build()
  } catch (e) {
    console.error(e.message)
    return 1
  }
  const after = probe()
  if (!after.ok) {
    console.error(`${NAME}: the native addon was built but does not load:\n${after.message}`)
    return 1
  }
  console.error(`${NAME}: native addon built from source and loaded.`)
  return 0
}

process.exitCode = main()
