// The ESM half of the smoke test, run from a project that installed the
// packed tarball: the import a user writes, resolved through the package's
// `exports`, gives the same class as require().

import assert from 'node:assert';
import { createRequire } from 'node:module';
import CallosumClient, { Rover } from 'callosum-client-tcp';
import * as ns from 'callosum-client-tcp';

const require = createRequire(import.meta.url);
assert.strictEqual(typeof CallosumClient, 'function', 'default export is the constructor');
assert.strictEqual(CallosumClient, require('callosum-client-tcp'), 'import and require give the same class');
assert.strictEqual(ns.CallosumClient, CallosumClient, 'named export CallosumClient');
assert.strictEqual(typeof Rover, 'function', 'named export Rover');
assert.strictEqual(Rover, CallosumClient.Rover, 'Rover is the class require() exposes as .Rover');
const client = new CallosumClient();
assert.strictEqual(client.MAX_SLOTS, 100);
assert.strictEqual(client.getConnection(), undefined);
if (typeof client.close === 'function') client.close();
process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
