// Wrong uses that must NOT compile. Each sits under `// @ts-expect-error`:
// tsc fails on a directive that has no error to excuse, and
// __test__/types.test.js also strips the directives and checks that every
// one of these lines, and no other, is an error.
import CallosumClient = require('callosum-client-tcp');
import { Socket } from 'node:net';

const socket = new Socket();
const client = new CallosumClient();

// @ts-expect-error MAX_SLOTS is a number
new CallosumClient({ MAX_SLOTS: '10' });
// @ts-expect-error unknown option (a typo of MAX_SLOTS)
new CallosumClient({ maxSlots: 10 });
// @ts-expect-error maxWaiting is a number
new CallosumClient({ maxWaiting: true });
// @ts-expect-error a class, not a function
CallosumClient();
// @ts-expect-error a slot is a number
client.newConnection('3', socket);
// @ts-expect-error the socket is required
client.newConnection(3);
// @ts-expect-error not a socket
client.newConnection(3, {});
// @ts-expect-error insertSocket takes (slot, socket) too
client.insertSocket(socket, 3);
// @ts-expect-error getConnection takes no argument
client.getConnection(1);
// @ts-expect-error the socket to return is required
client.returnConnection();
// @ts-expect-error not a socket
client.returnConnection(42);
// @ts-expect-error timeout is in milliseconds, a number
client.acquire({ timeout: '100ms' });
// @ts-expect-error signal is an AbortSignal
client.acquire({ signal: {} });
// @ts-expect-error acquire takes an options object
client.acquire(100);
// @ts-expect-error MAX_SLOTS is read only
client.MAX_SLOTS = 5;
// @ts-expect-error slotCount is read only
client.slotCount = 1;
// @ts-expect-error getConnection may return undefined
const lent: CallosumClient.PooledSocket = client.getConnection();
// @ts-expect-error the compatibility marks are read only
client.acquire().then((s) => { s._slot = 3; });
// @ts-expect-error the lowest slot is null on an empty pool
const lowest: number = client.stats().lowestSlot;
// @ts-expect-error no such stat
client.stats().heapSize;
// @ts-expect-error not an error code of this package
const code: CallosumClient.ErrorCode = 'ERR_NOPE';
// @ts-expect-error close takes no argument
client.close(true);
// @ts-expect-error ROVING_INTERVAL is in milliseconds, a number
new CallosumClient.Rover({ ROVING_INTERVAL: '1s' });
// @ts-expect-error a server needs a port
new CallosumClient.Rover().addServer('a', { host: 'localhost' });
// @ts-expect-error ports are numbers
client.rove({ a: { host: 'localhost', port: '4000' } });
// @ts-expect-error servers holds addresses (it is assignable, as in the original, but typed)
new CallosumClient.Rover().servers = { a: 'localhost:4000' };
// @ts-expect-error connect() may choose no server
const chosen: string = new CallosumClient.Rover().connect();
// @ts-expect-error a started rover is not a number
const started: number = new CallosumClient.Rover().start();

void [lent, lowest, code, chosen, started];
