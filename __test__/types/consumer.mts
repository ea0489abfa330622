// An ES module TypeScript consumer: default and named imports.
import CallosumClient, { CallosumClient as Named, Rover } from 'callosum-client-tcp';
import type { Socket } from 'node:net';

const client: CallosumClient = new CallosumClient({ MAX_SLOTS: 4 });
const same: CallosumClient = new Named();
const rover: CallosumClient.Rover = new Rover({ ROVING_INTERVAL: 100 });

export async function use(socket: Socket): Promise<number | null> {
  client.newConnection(0, socket);
  const s = await client.acquire({ timeout: 50 });
  client.returnConnection(s);
  rover.stop();
  same.close();
  client.close();
  return client.stats().lowestSlot;
}
