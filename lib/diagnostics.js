'use strict';

// The diagnostics_channel events this package publishes, for APMs and
// metrics exporters (the way undici publishes its own). Only decisions taken
// at roving and fault rates are published, never one per request: a
// getConnection/returnConnection publishes nothing. With no subscriber, each
// costs one `hasSubscribers` check. Message shapes are in README.md and
// index.d.ts.

const dc = require('node:diagnostics_channel');
const { debuglog } = require('node:util');

// NODE_DEBUG=callosum: the pool's decisions, logged. Read once: decision
// logging costs one branch when NODE_DEBUG is off.
const debug = debuglog('callosum');
const debugOn = debug.enabled;

const channels = Object.freeze({
  /** { client, slot, socket, displacedSlot: number | null } */
  kept: dc.channel('callosum:pool:kept'),
  /** { client, slot, socket, reason: 'full' | 'closed' | 'invalid-slot' | 'destroyed' | 'flooded', highestSlot: number | null } */
  refused: dc.channel('callosum:pool:refused'),
  /** { client, slot, socket, reason: 'end' | 'error' | 'close' | 'destroyed' | 'peer-ended' | 'unusable' | 'flooded', leased: boolean, error?: Error } */
  dropped: dc.channel('callosum:pool:dropped'),
  /** { client, timeout, waiting } */
  acquireTimeout: dc.channel('callosum:pool:acquire-timeout'),
  /** { client, leased } (sockets still out, destroyed when returned) */
  closed: dc.channel('callosum:pool:closed'),
  /** { rover, serverId, server, slot, socket } */
  roverConnection: dc.channel('callosum:rover:connection'),
  /** { rover, serverId, server, error } */
  roverHandshakeError: dc.channel('callosum:rover:handshake-error'),
  /** { rover, serverId, server } */
  roverUnreachable: dc.channel('callosum:rover:unreachable'),
});

/** Every channel name, for docs and tests. */
const names = Object.freeze(Object.values(channels).map((c) => c.name));

module.exports = { channels, names, debug, debugOn };
