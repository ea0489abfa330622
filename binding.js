'use strict';

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
//   generated loader's own error is its `cause`), made by the error registry
//   (lib/errors.js) from the facts gathered here.

const env = process.env;
const defaultCheck = env.NAPI_RS_ENFORCE_VERSION_CHECK === undefined;
if (defaultCheck) env.NAPI_RS_ENFORCE_VERSION_CHECK = '1';
try {
  module.exports = require('./binding.generated.js');
} catch (e) {
  throw notFound(e);
} finally {
  if (defaultCheck) delete env.NAPI_RS_ENFORCE_VERSION_CHECK;
}

function notFound(cause) {
  const pkg = require('./package.json');
  const { errors } = require('./lib/errors.js');
  const tried = [];
  for (let e = cause?.cause; e; e = e.cause) tried.unshift(String(e.message).split('\n')[0]);
  if (tried.length === 0) tried.push(String(cause?.message).split('\n')[0]);
  // napi-rs's names for this platform, as the generated loader tried them:
  // `callosum-client-tcp.linux-x64-gnu.node` and `callosum-client-tcp-linux-x64-gnu`.
  const local = tried.map((t) => /(callosum-client-tcp\.([\w-]+)\.node)/.exec(t)).find(Boolean);
  // The message is the registry's (lib/errors.js); here only the facts.
  return errors.ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND(
    {
      name: pkg.name,
      dir: __dirname,
      platform: local ? local[2] : `${process.platform}-${process.arch}`,
      processPlatform: process.platform,
      processArch: process.arch,
      tried,
      prebuilt: Object.keys(pkg.optionalDependencies || {}).map((p) => p.slice(pkg.name.length + 1)),
      localFile: local ? local[1] : null,
    },
    cause,
  );
}
