'use strict'

// The native addon. binding.generated.js is the loader the napi-rs CLI
// generates (`npm run build`: napi build --platform --js binding.generated.js);
// it looks for NAPI_RS_NATIVE_LIBRARY_PATH, then a local
// `callosum-client-tcp.<platform>.node` (npm run build, or the source build of
// scripts/install.js), then the prebuilt package
// `callosum-client-tcp-<platform>`. This wrapper adds two things only:
//
// - The version check of the prebuilt package is on unless
//   NAPI_RS_ENFORCE_VERSION_CHECK=0. Generated loaders check only when the
//   variable is set; here the JavaScript and the binary share a memory layout
//   and a call protocol, and a binary from another release could lend the
//   wrong socket instead of failing. An explicit value means what it means in
//   every napi-rs package ('0' off, anything else on): only the default is
//   stricter.
// - When nothing loads, an Error with code ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND
//   that lists what was tried and says how to build from source (the
//   generated loader's own error is its `cause`).

const env = process.env
const defaultCheck = env.NAPI_RS_ENFORCE_VERSION_CHECK === undefined
if (defaultCheck) env.NAPI_RS_ENFORCE_VERSION_CHECK = '1'
try {
  module.exports = require('./binding.generated.js')
} catch (e) {
  throw notFound(e)
} finally {
  if (defaultCheck) delete env.NAPI_RS_ENFORCE_VERSION_CHECK
}

function notFound(cause) {
  const pkg = require('./package.json')
  const tried = []
  for (let e = cause && cause.cause; e; e = e.cause) tried.unshift(String(e.message).split('\n')[0])
  if (tried.length === 0) tried.push(String(cause && cause.message).split('\n')[0])
  // napi-rs's names for this platform, as the generated loader tried them:
  // `callosum-client-tcp.linux-x64-gnu.node` and `callosum-client-tcp-linux-x64-gnu`.
  const local = tried.map((t) => /(callosum-client-tcp\.([\w-]+)\.node)/.exec(t)).find(Boolean)
  const platform = local ? local[2] : `${process.platform}-${process.arch}`
  const packageName = `${pkg.name}-${platform}`
  const prebuilt = Object.keys(pkg.optionalDependencies || {}).map((p) => p.slice(pkg.name.length + 1))
  const lines = [
    `${pkg.name}: no native addon could be loaded for ${platform} (platform ${process.platform}, arch ${process.arch}).`,
    'Tried:',
    ...tried.map((t) => `  - ${t}`),
    prebuilt.includes(platform)
      ? `A prebuilt binary exists for this platform in the package ${packageName}, an optional dependency: ` +
        'reinstall without --omit=optional / --no-optional, and delete package-lock.json and node_modules first ' +
        'if the lock file was made on another platform (npm/cli#4828).'
      : `No prebuilt binary is published for ${platform}${prebuilt.length ? ` (prebuilt: ${prebuilt.join(', ')})` : ''}.`,
    ...(tried.some((t) => t.includes('version mismatch'))
      ? [
          'The prebuilt package comes from another release than this one: reinstall so both come from the same ' +
            'release, or set NAPI_RS_ENFORCE_VERSION_CHECK=0 to use it anyway.',
        ]
      : []),
    `To build it from source, install Rust and cargo (https://rustup.rs), then run in ${__dirname}:`,
    '  node scripts/install.js',
    `or, from your project: npm rebuild ${pkg.name} (cargo builds it and the library is copied to ` +
      `${local ? local[1] : `${pkg.name}.<platform>.node`}).`,
    `If npm skipped the package's install script (allowScripts), approve it first: npm install-scripts approve ${pkg.name}`,
  ]
  const err = new Error(lines.join('\n'), { cause })
  err.code = 'ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND'
  err.platform = platform
  err.localFile = local ? local[1] : null
  err.attempts = tried
  return err
}
