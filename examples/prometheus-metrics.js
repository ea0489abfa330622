'use strict';

// Exporting the pool's events and counters as Prometheus text, with no
// dependency: diagnostics_channel subscribers count the decisions (kept,
// refused, dropped by reason, acquire time-outs, rover connections,
// handshake errors, unreachable servers) across every client and rover of the
// process, and `client.stats()` / `client.counters()` give the rest.
//
//   node examples/prometheus-metrics.js     (a short run on loopback, then the snapshot)
//
// In a service, serve `exporter.render()` on your metrics endpoint.

const dc = require('node:diagnostics_channel');

/** Counts the package's diagnostics_channel events; render() adds each client's stats and counters. */
function createExporter() {
  const events = new Map(); // 'name{labels}' -> count
  const bump = (name, labels = '') => events.set(`${name}${labels}`, (events.get(`${name}${labels}`) ?? 0) + 1);
  const subscriptions = {
    'callosum:pool:kept': (m) => bump('callosum_kept_total', `{displacing="${m.displacedSlot !== null}"}`),
    'callosum:pool:refused': (m) => bump('callosum_refused_total', `{reason="${m.reason}"}`),
    'callosum:pool:dropped': (m) => bump('callosum_dropped_total', `{reason="${m.reason}",leased="${m.leased}"}`),
    'callosum:pool:acquire-timeout': () => bump('callosum_acquire_timeouts_total'),
    'callosum:rover:connection': (m) => bump('callosum_rover_connections_total', `{server="${m.serverId}"}`),
    'callosum:rover:handshake-error': (m) =>
      bump('callosum_rover_handshake_errors_total', `{server="${m.serverId}",code="${m.error.code}"}`),
    'callosum:rover:unreachable': (m) => bump('callosum_rover_unreachable_total', `{server="${m.serverId}"}`),
  };
  for (const [name, fn] of Object.entries(subscriptions)) dc.subscribe(name, fn);
  const clients = new Map(); // name -> client

  return {
    /** Adds a client's stats() and counters() to the snapshot, labelled `pool="name"`. */
    watch(name, client) {
      clients.set(name, client);
    },
    render() {
      const lines = [];
      for (const [key, n] of [...events].sort()) lines.push(`${key} ${n}`);
      for (const [name, client] of clients) {
        const stats = client.stats();
        for (const key of ['slotCount', 'idle', 'leased', 'displaced', 'waiting']) {
          lines.push(`callosum_pool_${snake(key)}{pool="${name}"} ${stats[key]}`);
        }
        for (const [key, n] of Object.entries(client.counters())) {
          lines.push(`callosum_pool_${snake(key)}_total{pool="${name}"} ${n}`);
        }
      }
      return `${lines.join('\n')}\n`;
    },
    close() {
      for (const [name, fn] of Object.entries(subscriptions)) dc.unsubscribe(name, fn);
    },
  };
}

function snake(key) {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

module.exports = { createExporter };

if (require.main === module) {
  (async () => {
    const CallosumClient = require('..');
    const { CallosumServer } = require('../__test__/fixtures/callosum-server.js');
    const exporter = createExporter();
    const server = new CallosumServer();
    await server.listen();
    const client = new CallosumClient({ MAX_SLOTS: 3 });
    client.on('error', () => {});
    client.on('unreachable', () => {});
    exporter.watch('api', client);
    client.rove({ a: server.address, gone: { host: '127.0.0.1', port: 1 } }, { ROVING_INTERVAL: 20 });
    for (let i = 0; i < 20; i++) {
      const socket = await client.acquire({ timeout: 1000 }).catch(() => undefined);
      if (socket !== undefined) client.returnConnection(socket);
      await new Promise((r) => setTimeout(r, 10));
    }
    await client.close({ timeout: 1000 });
    await server.close();
    process.stdout.write(exporter.render());
    exporter.close();
  })();
}
