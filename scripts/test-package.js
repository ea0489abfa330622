#!/usr/bin/env node
'use strict';

// `npm run test:package`: installs the package for real, as a user would.
//
//   1. builds the addon for this platform (scripts/install.js --build, cargo),
//      `npm pack`s the main package and a platform package made from
//      npm/<platform>/ plus that binary;
//   2. in an empty folder: `npm init -y`, `npm install` both tarballs, runs
//      the smoke programs (scripts/smoke/: `require`, a lease/return/displace
//      scenario over loopback sockets, and `import`), and type-checks the
//      TypeScript consumers against the installed types;
//   3. in another empty folder, only the main tarball: its install script
//      must build the addon from the shipped Rust sources with cargo (into
//      target/package-test/ here, so later runs reuse it), and the same
//      smoke program must pass on that build;
//   4. asserts the main tarball's file list;
//   5. checks the failure paths: with the install script skipped, require()
//      throws an error naming the platform and the source build; without
//      cargo, the install fails and says so.
//
// Ends with `package: N passed, M failed`; exit code 1 on any failure.
// CALLOSUM_TEST_PACKAGE_KEEP=1 keeps the temporary folder.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, pkg, NPM, cleanEnv, run, allowScripts, npmInstall, ...tools } = require('./lib/package-tools.js');

const results = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'callosum-package-'));

function log(msg) {
  console.log(msg);
}

function record(name, ok, detail) {
  results.push({ name, ok, detail });
  log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `\n      ${String(detail).split('\n').join('\n      ')}` : ''}`);
  return ok;
}

function check(name, fn) {
  try {
    const detail = fn();
    return record(name, true, typeof detail === 'string' ? detail : '');
  } catch (e) {
    return record(name, false, e?.message ? e.message : String(e));
  }
}

// The type-test consumers (__test__/types/consumer.cts and .mts) are
// compiled again in the installed project, against the installed types,
// resolved through the package's `exports` the way a user's project does.
const CONSUMERS = ['consumer.cts', 'consumer.mts'];

// ---------------------------------------------------------------------------

function fileList(info) {
  return info.files.map((f) => ({ path: f.path.replace(/\\/g, '/'), size: f.size }));
}

function workspaceMembers() {
  const toml = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  const m = /\[workspace\][^[]*?members\s*=\s*\[([^\]]*)\]/s.exec(toml);
  if (!m) return [];
  return [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
}

function gitFiles(dir) {
  const r = spawnSync('git', ['ls-files', dir], { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}

function assertTarball(files) {
  const names = new Set(files.map((f) => f.path));
  const required = [
    'package.json',
    'README.md',
    'LICENSE',
    'index.js',
    'index.mjs',
    'index.d.ts',
    'binding.js',
    'binding.generated.js',
    'scripts/install.js',
    'build.rs',
    'Cargo.toml',
    'Cargo.lock',
    'src/lib.rs',
    ...workspaceMembers().map((m) => `${m}/Cargo.toml`),
    ...gitFiles('lib').filter((f) => /\.(c|m)?js$|\.d\.ts$/.test(f)),
    ...gitFiles('src'),
  ];
  if (fs.existsSync(path.join(ROOT, 'binding.d.ts'))) required.push('binding.d.ts');
  for (const m of workspaceMembers()) {
    // A crate's unit tests (src/tests.rs, src/*_tests.rs: #[cfg(test)]
    // modules) are not needed to build it: they stay out of the tarball.
    required.push(...gitFiles(`${m}/src`).filter((f) => !/(^|\/|_)tests\.rs$/.test(f)), ...gitFiles(`${m}/build.rs`));
  }
  const missing = [...new Set(required)].filter((f) => !names.has(f));
  const forbidden = [
    [/(^|\/)__test__\//, 'tests'],
    [/(^|\/)tests?\//, 'tests'],
    [/(^|\/)(benches|examples)\//, 'benches or examples'],
    [/\.(test|spec)\.(c|m)?[jt]s$/, 'tests'],
    [/(^|\/)src\/tests\.rs$/, 'Rust unit tests'],
    [/(^|\/)target\//, 'a cargo target dir'],
    [/^bench\//, 'bench'],
    [/(^|\/)bench\/out\//, 'bench output'],
    [/\.node$/, 'a native binary'],
    [/^npm\//, 'platform package folders'],
    [/^examples\//, 'examples'],
    [/^\.(github|ci)\//, 'CI files'],
    [/^scripts\/(?!install\.js$)/, 'development scripts (only the install script ships)'],
    [/\.tgz$/, 'a tarball'],
    [/^node_modules\//, 'node_modules'],
    [/^docs\//, 'docs'],
  ];
  const bad = files
    .map((f) => [f.path, forbidden.find(([re]) => re.test(f.path))])
    .filter(([, hit]) => hit)
    .map(([p, [, why]]) => `${p} (${why})`);
  const problems = [];
  if (missing.length) problems.push(`missing: ${missing.join(', ')}`);
  if (bad.length) problems.push(`must not ship: ${bad.join(', ')}`);
  if (problems.length) throw new Error(problems.join('\n'));
}

function runScenario(appDir, expectNativeIn) {
  tools.copySmoke(appDir);
  const native = tools.runSmokeCjs(appDir);
  if (!native.some((f) => f.startsWith(expectNativeIn))) {
    throw new Error(`the addon loaded from ${native.join(', ') || 'nowhere'}, expected ${expectNativeIn}`);
  }
  return `addon: ${native.join(', ')}`;
}

function main() {
  log(`test:package for ${pkg.name}@${pkg.version} on ${process.platform}-${process.arch}, in ${tmp}`);

  // 1. The binary of this tree, then both tarballs.
  // The platform's napi-rs name (linux-x64-gnu) and binary name, from the
  // file the loader loads once built.
  let ABI = `${process.platform}-${process.arch}`;
  let binaryName = null;
  const built = check('build the addon with cargo (scripts/install.js --build), and the loader loads it', () => {
    run(process.execPath, [path.join(__dirname, 'install.js'), '--build'], { cwd: ROOT, env: cleanEnv() });
    const loaded = tools.loadedBinary();
    if (!loaded.file) throw new Error(`the loader loads nothing after the build: ${loaded.why}`);
    if (path.dirname(loaded.file) !== ROOT) throw new Error(`the loader loaded ${loaded.file}, not the local build`);
    ABI = tools.abiOf(loaded.file);
    binaryName = path.basename(loaded.file);
    return `${binaryName}: ${fs.statSync(loaded.file).size} bytes`;
  });
  check('binding.generated.js is the loader napi-rs generated for this version (npm run build regenerates it)', () => {
    const loader = fs.readFileSync(path.join(ROOT, 'binding.generated.js'), 'utf8');
    if (!loader.includes('auto-generated by NAPI-RS')) throw new Error('no NAPI-RS header');
    const versions = new Set([...loader.matchAll(/bindingPackageVersion !== '([^']+)'/g)].map((m) => m[1]));
    if (versions.size !== 1 || !versions.has(pkg.version)) {
      throw new Error(
        `it checks platform packages against version ${[...versions].join(', ')}, the package is ${pkg.version}: run npm run build`,
      );
    }
  });

  let main = null;
  check('npm pack the main package', () => {
    main = tools.npmPack(ROOT, tmp);
    return `${main.filename}: ${main.size} bytes packed, ${main.unpackedSize} unpacked, ${main.entryCount} files`;
  });

  let plat = null;
  if (built) {
    check(`npm pack the platform package ${tools.platformPackageName(ABI)}`, () => {
      plat = tools.packPlatformPackage(ABI, path.join(ROOT, binaryName), tmp);
      return `${plat.filename}: ${fileList(plat)
        .map((f) => f.path)
        .join(', ')}`;
    });
  }

  // 4 (first, it needs nothing installed). The tarball's file list.
  if (main) {
    const files = fileList(main);
    log(`\nmain tarball ${main.filename} (${main.size} bytes packed, ${main.unpackedSize} unpacked):`);
    for (const f of files) log(`  ${String(f.size).padStart(8)}  ${f.path}`);
    log('');
    check('main tarball ships what a user and a source build need, and nothing else', () => assertTarball(files));
  }

  // 2. Main + platform package: the prebuilt path.
  if (main && plat) {
    const app = path.join(tmp, 'app-prebuilt');
    const ok = check('npm install main + platform tarballs in an empty project', () => {
      const { out } = npmInstall(app, [main.path, plat.path]);
      if (/building the native addon from source/.test(out))
        throw new Error(`the install script built from source although the platform package was installed:\n${out}`);
      const stray = fs.readdirSync(path.join(app, 'node_modules', pkg.name)).filter((f) => f.endsWith('.node'));
      if (stray.length) throw new Error(`unexpected binaries in the main package: ${stray.join(', ')}`);
    });
    if (ok) {
      check('require(): lease/return/displace over loopback, addon from the platform package', () =>
        runScenario(app, `node_modules/${tools.platformPackageName(ABI)}/${binaryName}`),
      );
      check('import (ESM): default and named export', () => {
        tools.runSmokeMjs(app);
      });
      check('TypeScript: the type-test consumers compile against the installed package (tsc --noEmit)', () => {
        const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
        const typeRoots = path.join(ROOT, 'node_modules', '@types');
        if (!fs.existsSync(tsc)) throw new Error('typescript is not installed in the repository (npm install)');
        if (!fs.existsSync(path.join(typeRoots, 'node')))
          throw new Error('@types/node is not installed in the repository (npm install)');
        for (const f of CONSUMERS) fs.copyFileSync(path.join(ROOT, '__test__', 'types', f), path.join(app, f));
        run(
          process.execPath,
          [
            tsc,
            '--noEmit',
            '--strict',
            '--module',
            'node16',
            '--moduleResolution',
            'node16',
            '--target',
            'es2022',
            '--lib',
            'es2022',
            '--typeRoots',
            typeRoots,
            '--types',
            'node',
            ...CONSUMERS,
          ],
          { cwd: app },
        );
        return CONSUMERS.join(', ');
      });
    }
  }

  // 3. Main tarball only: the source build path.
  if (main) {
    const app = path.join(tmp, 'app-source');
    const targetDir = path.join(ROOT, 'target', 'package-test');
    const ok = check('npm install the main tarball alone: its install script builds the addon with cargo', () => {
      const t0 = Date.now();
      const { out } = npmInstall(app, [main.path], { CARGO_TARGET_DIR: targetDir });
      if (!/built from source and loaded/.test(out))
        throw new Error(`the install script did not report a source build:\n${out.split('\n').slice(-30).join('\n')}`);
      const local = path.join(app, 'node_modules', pkg.name, binaryName);
      if (!fs.existsSync(local)) throw new Error(`no ${binaryName} in the installed package`);
      if (fs.existsSync(path.join(app, 'node_modules', pkg.name, 'target')))
        throw new Error('the build left a target/ inside node_modules although CARGO_TARGET_DIR was set');
      return `built in ${((Date.now() - t0) / 1000).toFixed(1)} s (CARGO_TARGET_DIR=${path.relative(ROOT, targetDir)})`;
    });
    if (ok) {
      check('require(): lease/return/displace over loopback, addon built from source', () =>
        runScenario(app, `node_modules/${pkg.name}/${binaryName}`),
      );
    }
  }

  // 5. The failure paths: no binary and no build (npm skipped the install
  // script), and no cargo on PATH.
  if (main) {
    const app = path.join(tmp, 'app-no-scripts');
    check(
      'no binary (install script skipped): require() throws an error naming the platform and the source build',
      () => {
        fs.mkdirSync(app, { recursive: true });
        run(NPM, ['init', '-y'], { cwd: app });
        run(NPM, ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', main.path], { cwd: app });
        const probe =
          "try { require('callosum-client-tcp'); console.log('LOADED') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, cause: e.cause && e.cause.message })) }";
        const { stdout } = run(process.execPath, ['-e', probe], { cwd: app });
        if (stdout.includes('LOADED')) throw new Error('it loaded without any binary');
        const e = JSON.parse(stdout.trim().split('\n').pop());
        if (e.code !== 'ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND') throw new Error(`code ${e.code}: ${e.message}`);
        if (!e.cause) throw new Error("no cause: the generated loader's error should be rethrown as the cause");
        for (const want of [ABI, process.platform, process.arch, 'cargo', 'scripts/install.js']) {
          if (!e.message.includes(want)) throw new Error(`the message does not mention ${want}:\n${e.message}`);
        }
        return e.message.split('\n')[0];
      },
    );

    const cargoDirs = (process.env.PATH || '').split(path.delimiter).filter((d) => {
      return ['cargo', 'cargo.exe'].some((c) => fs.existsSync(path.join(d, c)));
    });
    const pathWithoutCargo = (process.env.PATH || '')
      .split(path.delimiter)
      .filter((d) => !cargoDirs.includes(d))
      .join(path.delimiter);
    const nodeDir = path.dirname(process.execPath);
    if (cargoDirs.includes(nodeDir)) {
      record(
        'no cargo: the install fails with a clear message',
        true,
        'skipped: node and cargo share a directory on PATH',
      );
    } else {
      check('no cargo and no prebuilt binary: npm install fails, naming the platform and how to build', () => {
        const dir = path.join(tmp, 'app-no-cargo');
        fs.mkdirSync(dir, { recursive: true });
        run(NPM, ['init', '-y'], { cwd: dir });
        allowScripts(dir);
        const r = spawnSync(
          NPM,
          ['install', '--offline', '--foreground-scripts', '--no-audit', '--no-fund', main.path],
          {
            cwd: dir,
            encoding: 'utf8',
            shell: process.platform === 'win32',
            env: cleanEnv({ PATH: pathWithoutCargo, CARGO: '', RUSTC: '' }),
          },
        );
        const out = `${r.stdout}${r.stderr}`;
        if (r.status === 0) throw new Error(`npm install succeeded without cargo:\n${out}`);
        for (const want of ['cargo was not found', ABI, 'rustup.rs']) {
          if (!out.includes(want))
            throw new Error(`the output does not mention ${want}:\n${out.split('\n').slice(-25).join('\n')}`);
        }
        return out
          .split('\n')
          .find((l) => l.includes('cargo was not found'))
          .trim();
      });
    }
  }

  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  log(
    `\n${failed ? 'FAILED' : 'OK'}: ${results.length} checks${
      failed
        ? `; failed: ${results
            .filter((r) => !r.ok)
            .map((r) => r.name)
            .join('; ')}`
        : ''
    }`,
  );
  if (failed || process.env.CALLOSUM_TEST_PACKAGE_KEEP) log(`kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
  log(`package: ${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = main();
