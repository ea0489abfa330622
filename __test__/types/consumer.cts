// A CommonJS TypeScript consumer: uses every public member of the package.
import CallosumClient = require('callosum-client-tcp');
import type { EventEmitter } from 'node:events';
import { Socket, connect } from 'node:net';

const options: CallosumClient.Options = { MAX_SLOTS: 10, maxWaiting: 5 };
const client = new CallosumClient(options);
const byDefault = new CallosumClient();
const falsy = new CallosumClient({ MAX_SLOTS: 0 });
const asEmitter: EventEmitter = client;

const max: number = client.MAX_SLOTS;
const held: number = client.slotCount;
const waiting: number = client.waiting;
const closed: boolean = client.closed;

const socket: Socket = connect(1, '127.0.0.1');
client.newConnection(3, socket);
client.insertSocket(4, new Socket());

const lent: CallosumClient.PooledSocket | undefined = client.getConnection();
if (lent !== undefined) {
  const slot: number = lent._slot;
  const leased: boolean = lent._leased;
  const destroyed: boolean = lent._destroyed;
  const destroySocket: () => void = lent._destroySocket;
  const asSocket: Socket = lent;
  client.returnConnection(asSocket);
  void [slot, leased, destroyed, destroySocket];
}

async function lease(): Promise<void> {
  const acquireOptions: CallosumClient.AcquireOptions = { timeout: 100, signal: AbortSignal.timeout(1000) };
  const s: CallosumClient.PooledSocket = await client.acquire(acquireOptions);
  s.write('ping\r\n');
  client.returnConnection(s);
  const t = await client.acquire();
  client.returnConnection(t);
  const u = await client.acquire({ signal: new AbortController().signal });
  client.returnConnection(u);
}

const stats: CallosumClient.Stats = client.stats();
const counts: number[] = [stats.maxSlots, stats.slotCount, stats.idle, stats.leased, stats.displaced, stats.waiting];
const lowest: number | null = stats.lowestSlot;
const highest: number | null = stats.highestSlot;
const isClosed: boolean = stats.closed;

client.on('error', (err: CallosumClient.CallosumError) => {
  const code: CallosumClient.ErrorCode = err.code;
  const message: string = err.message;
  void [code, message];
});
client.on('unreachable', (id: string, server: CallosumClient.ServerAddress) => {
  void [id, server.host, server.port];
});
client.once('close', () => undefined);

const servers: Record<string, CallosumClient.ServerAddress> = { a: { host: '127.0.0.1', port: 4000 } };
const roverOptions: CallosumClient.RoverOptions = {
  ROVING_INTERVAL: 500,
  servers,
  connectTimeout: 1000,
  handshakeTimeout: 1000,
  maxBackoff: 10000,
  random: Math.random,
};
const wired: CallosumClient.Rover = client.rove(servers, { ROVING_INTERVAL: 250 });
const rover = new CallosumClient.Rover(roverOptions);
const roverAsEmitter: EventEmitter = rover;
rover.addServer('b', { host: 'localhost', port: 4001 });
rover.dropServer('b');
rover.on('connection', (slot: number, s: Socket) => client.newConnection(slot, s));
rover.on('unreachable', (id: string, server: CallosumClient.ServerAddress) => void [id, server]);
rover.on('error', (err: CallosumClient.CallosumError) => void err.code);
const chained: CallosumClient.Rover = rover
  .addServer('c', { host: '127.0.0.1', port: 4002 })
  .dropServer('c')
  .start()
  .stop();
const chosen: string | undefined = rover.connect();
const known: Record<string, CallosumClient.ServerAddress> = rover.servers;
const running: boolean = rover.running;
const pending: number = rover.pending;
new CallosumClient.Rover();

client.close();

// The same class under every name it is exported as.
const Named: typeof CallosumClient = CallosumClient.CallosumClient;
const Default: typeof CallosumClient = CallosumClient.default;
const named: CallosumClient = new Named({ MAX_SLOTS: 2 });
const viaDefault: CallosumClient = new Default();

void [byDefault, falsy, asEmitter, max, held, waiting, closed, lease, counts, lowest, highest, isClosed];
void [wired, roverAsEmitter, named, viaDefault, chained, chosen, known, running, pending];
