// `npm run typecheck` (tsconfig.check.json): lib/ against the types users see. index.d.ts declares the
// package, lib/ implements it; each constant below assigns an implementation to its declaration, so a member
// that index.d.ts promises and lib/ lacks, or types differently, is an error here. tsc only checks this file.
import type Declared = require('./index.js'); // index.d.ts: TypeScript prefers a .d.ts to the .js beside it
import client = require('./lib/client.js');
import lease = require('./lib/lease.js');
import Rover = require('./lib/rover/index.js');

type ClientClass = new (options?: Declared.Options) => Declared;
type RoverClass = new (options?: Declared.RoverOptions) => Declared.Rover;

export const clientClass: ClientClass = client.CallosumClient;
export const roverClass: RoverClass = Rover;
export const leaseInstance = (impl: InstanceType<typeof lease.Lease>): Declared.Lease => impl;
