// `await using` and `using` with the client and the rover (TypeScript 5.2+):
// compiled by __test__/types.test.js to JavaScript and run under Node.
import CallosumClient, { Rover } from 'callosum-client-tcp';
import { Socket } from 'node:net';

let client: CallosumClient | undefined;
let rover: CallosumClient.Rover | undefined;
let socket: Socket | undefined;
{
  await using pool = new CallosumClient({ MAX_SLOTS: 2 });
  using roving = new Rover({ ROVING_INTERVAL: 60000 });
  client = pool;
  rover = roving;
  socket = new Socket();
  pool.newConnection(0, socket);
  const lent = pool.getConnection();
  if (lent !== undefined) pool.returnConnection(lent);
  using lease = await pool.lease({ timeout: 100 });
  if (lease.socket === undefined) throw new Error('no socket');
}
// Out of the block: the pool is closed (its idle socket destroyed), the rover stopped.
console.log(JSON.stringify({ closed: client.closed, destroyed: socket.destroyed, running: rover.running }));
