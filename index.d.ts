// Type definitions for callosum-client-tcp (native edition).

import { EventEmitter } from 'node:events';
import type { LookupFunction, Socket } from 'node:net';

declare namespace CallosumClient {
  export interface Options {
    /** Most connections kept. Default 100; a falsy value means 100. A positive safe integer. */
    MAX_SLOTS?: number;
    /** Most callers of `acquire()` waiting at once; past it they are rejected with ERR_CALLOSUM_QUEUE_FULL. Default Infinity. */
    maxWaiting?: number;
    /**
     * Most unread bytes the pool holds for one idle socket (bytes a server sent after the slot line or after the
     * last reply, given back to the next user in order). Past it the socket is dropped as 'flooded'. Default 65536.
     */
    maxHeldBytes?: number;
    /**
     * Opt-in adaptive balancing (E6): connections are ranked by an effective slot, the slot scaled by how long
     * that server's connections stay lent compared with this client's other servers. Default false: the lowest
     * slot is lent, exactly as the original.
     */
    adaptive?: boolean;
  }

  /** One server as an adaptive pool sees it (`client.servers()`). */
  export interface ServerInfo {
    /** The rover's server id for connections from `rove()`, otherwise the socket's `remoteAddress:remotePort`. */
    server: string;
    /** Connections kept to it now, idle or lent. */
    held: number;
    /** Leases of its connections from idle so far (a socket handed from a return straight to a waiting acquire() is not counted again). */
    leases: number;
    /** Its lease-time estimate in ms, or null before the first timed lease. */
    estimateMs: number | null;
    /** The weight its slots are scaled by (1: as the plain slot; above 1: judged slower). */
    weight: number;
  }

  export interface AcquireOptions {
    /** Milliseconds (0 to 2^31-1, or Infinity) to wait before rejecting with ERR_CALLOSUM_ACQUIRE_TIMEOUT. */
    timeout?: number;
    /** Rejects with an AbortError (code ABORT_ERR) when aborted. */
    signal?: AbortSignal;
  }

  export interface Stats {
    maxSlots: number;
    /** Live kept sockets, idle or leased (not displaced). */
    slotCount: number;
    idle: number;
    leased: number;
    /** Leased sockets that lost their slot to a lower one: destroyed when returned. */
    displaced: number;
    lowestSlot: number | null;
    highestSlot: number | null;
    /** Callers of `acquire()` waiting. */
    waiting: number;
    /** Unread bytes held now for idle sockets, all together (at most slotCount x maxHeldBytes). */
    heldBytes: number;
    maxHeldBytes: number;
    closed: boolean;
  }

  /** A socket as the pool marks it (compatibility with the original: reserved, read only). */
  export type PooledSocket<S extends Socket = Socket> = S & {
    readonly _slot: number;
    readonly _leased: boolean;
    readonly _destroyed: boolean;
    readonly _destroySocket: () => void;
  };

  /** Codes of the errors this package reports (lib/errors.js is the registry; a test checks this list against it). */
  export type ErrorCode =
    | 'ERR_INVALID_ARG_TYPE'
    | 'ERR_INVALID_ARG_VALUE'
    | 'ERR_OUT_OF_RANGE'
    | 'ERR_CALLOSUM_INVALID_SLOT'
    | 'ERR_CALLOSUM_NOT_A_SOCKET'
    | 'ERR_CALLOSUM_SOCKET_HELD'
    | 'ERR_CALLOSUM_NOT_LEASED'
    | 'ERR_CALLOSUM_ACQUIRE_TIMEOUT'
    | 'ERR_CALLOSUM_QUEUE_FULL'
    | 'ERR_CALLOSUM_CLOSED'
    | 'ABORT_ERR'
    | 'ERR_CALLOSUM_CLOSE_TIMEOUT'
    | 'ERR_CALLOSUM_NO_SERVERS'
    | 'ERR_CALLOSUM_BAD_SLOT_LINE'
    | 'ERR_CALLOSUM_CLOSED_EARLY'
    | 'ERR_CALLOSUM_HANDSHAKE_TIMEOUT'
    | 'ERR_CALLOSUM_NATIVE_BINDING_NOT_FOUND'
    | 'ERR_CALLOSUM_NATIVE_MISMATCH'
    | 'ERR_CALLOSUM_POISONED'
    | 'ERR_CALLOSUM_REENTRANT'
    | 'ERR_CALLOSUM_NATIVE';

  /** What a pool has done since it was made: monotonic counts (`client.counters()`). */
  export interface Counters {
    /** Sockets lent: getConnection, acquire, and hand-offs to waiters. */
    leases: number;
    /** Returns accepted. */
    returns: number;
    /** Offered sockets kept (displacing ones included). */
    offersKept: number;
    /** Kept offers that displaced the highest kept slot. */
    offersDisplacing: number;
    /** Offered sockets refused and destroyed: pool full, closed, bad slot, already destroyed. */
    offersRefused: number;
    /** Kept sockets found dead while idle. */
    droppedIdle: number;
    /** The part of droppedIdle dropped for more than maxHeldBytes unread (a peer flooding an idle connection). */
    droppedFlooded: number;
    /** Kept sockets that died while lent out. */
    droppedLeased: number;
    acquiresImmediate: number;
    acquiresAfterWait: number;
    acquiresTimedOut: number;
    acquiresAborted: number;
    acquiresQueueFull: number;
  }

  export interface CloseOptions {
    /** Milliseconds to wait for sockets still out; then they are destroyed and the promise rejects with ERR_CALLOSUM_CLOSE_TIMEOUT. */
    timeout?: number;
  }

  /** `diagnostics_channel` names and the messages published on them. */
  export interface ChannelMessages {
    'callosum:pool:kept': { client: CallosumClient; slot: number; socket: Socket; displacedSlot: number | null };
    'callosum:pool:refused': {
      client: CallosumClient;
      slot: unknown;
      socket: Socket;
      reason: 'full' | 'closed' | 'invalid-slot' | 'destroyed' | 'flooded';
      highestSlot: number | null;
    };
    'callosum:pool:dropped': {
      client: CallosumClient;
      slot: number | undefined;
      socket: Socket;
      reason: 'end' | 'error' | 'close' | 'destroyed' | 'peer-ended' | 'unusable' | 'flooded';
      leased: boolean;
      error?: unknown;
    };
    'callosum:pool:acquire-timeout': { client: CallosumClient; timeout: number; waiting: number };
    'callosum:pool:closed': { client: CallosumClient; leased: number };
    'callosum:rover:connection': {
      rover: Rover;
      serverId: string;
      server: ServerAddress;
      slot: number;
      socket: Socket;
    };
    'callosum:rover:handshake-error': { rover: Rover; serverId: string; server: ServerAddress; error: CallosumError };
    'callosum:rover:unreachable': { rover: Rover; serverId: string; server: ServerAddress };
  }

  export type ChannelName = keyof ChannelMessages;

  /** One socket lent once, given back once (`client.lease()`). */
  export interface Lease {
    /** The socket lent; undefined once released. */
    readonly socket: PooledSocket | undefined;
    readonly released: boolean;
    /** Gives the socket back, once; a second call is reported as ERR_CALLOSUM_NOT_LEASED. */
    release(): void;
    [Symbol.dispose](): void;
  }

  export interface CallosumError extends Error {
    code: ErrorCode;
    /** Rover errors: the server concerned. */
    serverId?: string;
    server?: ServerAddress;
    /** ERR_CALLOSUM_BAD_SLOT_LINE: what was wrong with the line. */
    reason?: string;
  }

  export interface ServerAddress {
    host: string;
    port: number;
  }

  export interface RoverOptions {
    /** Milliseconds between connection attempts. Default 1000. */
    ROVING_INTERVAL?: number;
    servers?: Record<string, ServerAddress>;
    /** Milliseconds to connect. Default 2000. */
    connectTimeout?: number;
    /** Milliseconds from connect to a whole slot line. Default 2000. */
    handshakeTimeout?: number;
    /** Skip an unreachable server for a while (ROVING_INTERVAL * 2^(failures-1), at most maxBackoff). Default false: retried whenever picked, as the original. */
    backOffUnreachable?: boolean;
    /** Ceiling of that back-off, ms. Default 30000. */
    maxBackoff?: number;
    /** A source of numbers in [0, 1), for repeatable runs. Default Math.random. */
    random?: () => number;
    /** A monotonic clock in ms for the back-off (a test hook). Default performance.now. */
    now?: () => number;
    /** Servers tried per tick, distinct, at random (capped at the number of servers). Default 1, the original's cadence. */
    probes?: number;
    /** Makes each attempt's socket; must hand `lookup` on to it. Default net.connect. */
    connect?: (options: { host: string; port: number; lookup: LookupFunction }) => Socket;
    /** The resolver given to each attempt's socket, shaped as dns.lookup. Default dns.lookup. */
    lookup?: LookupFunction;
  }

  /** Offers the pool a connection to a random known server every interval. */
  export class Rover extends EventEmitter {
    constructor(options?: RoverOptions);
    addServer(id: string | number, server: ServerAddress): this;
    dropServer(id: string | number): this;
    /** Attempts at once, then every ROVING_INTERVAL (restarts the interval if running). */
    start(): this;
    /** Stops the timer and destroys attempts in progress. */
    stop(): this;
    /** Runs one tick now; returns the id of the first server an attempt was started to, or undefined. */
    connect(): string | undefined;
    /** The known servers, by id: a plain object, read at every tick (as in the original). */
    servers: Record<string, ServerAddress>;
    readonly ROVING_INTERVAL: number;
    readonly connectTimeout: number;
    readonly handshakeTimeout: number;
    readonly maxBackoff: number;
    readonly backOffUnreachable: boolean;
    /** Servers tried per tick. */
    readonly probes: number;
    /** The interval timer (null before start()): `clearInterval(rover.intervalId)` stops the rover, as the original. */
    intervalId: ReturnType<typeof setInterval> | null;
    /** Whether the interval timer runs. */
    readonly running: boolean;
    /** A server's failures in a row and when it may be picked again (0: now), or undefined. */
    serverState(id: string | number): { failures: number; retryAt: number } | undefined;
    [Symbol.dispose](): void;
    [Symbol.asyncDispose](): Promise<void>;
    /** Attempts still connecting or handshaking. */
    readonly pending: number;
    on(event: 'connection', listener: (slot: number, socket: Socket, serverId: string) => void): this;
    on(event: 'unreachable', listener: (id: string, server: ServerAddress) => void): this;
    on(event: 'error', listener: (error: CallosumError) => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  /** The class itself, for `import { CallosumClient } from 'callosum-client-tcp'`. */
  export { CallosumClientClass as CallosumClient };
}

/**
 * A Callosum connection pool: keeps the `MAX_SLOTS` lowest slots it is
 * offered and always lends the idle connection with the lowest slot.
 */
declare class CallosumClient extends EventEmitter {
  constructor(options?: CallosumClient.Options);

  readonly MAX_SLOTS: number;
  /** Live kept sockets, idle or leased (not displaced). */
  readonly slotCount: number;
  /** Callers of `acquire()` waiting. */
  readonly waiting: number;
  readonly closed: boolean;

  /**
   * Offers a connection on `slot`: kept (possibly displacing the highest slot) or destroyed. `serverId` (the
   * rover's 'connection' event passes it third) names its server to an adaptive pool; by default remoteAddress:port.
   */
  newConnection(slot: number, socket: Socket, serverId?: string): void;
  /** Internal in the original; the same as `newConnection` here. */
  insertSocket(slot: number, socket: Socket): void;
  /** Lends the idle live socket with the lowest slot, or `undefined` if none. */
  getConnection(): CallosumClient.PooledSocket | undefined;
  /** Gives back a socket lent by `getConnection` or `acquire`. */
  returnConnection(socket: Socket): void;
  /** A leased socket: at once if one is idle, else after waiting (FIFO). */
  acquire(options?: CallosumClient.AcquireOptions): Promise<CallosumClient.PooledSocket>;
  /** `acquire()` as a lease, released once: a second `release()` is ERR_CALLOSUM_NOT_LEASED whoever holds the socket since. */
  lease(options?: CallosumClient.AcquireOptions): Promise<CallosumClient.Lease>;
  /**
   * Stops lending and keeping: idle sockets destroyed now, leased ones when returned, waiters rejected,
   * rovers stopped. The promise resolves once no socket the pool owned is out; with `timeout`, it
   * rejects with ERR_CALLOSUM_CLOSE_TIMEOUT at the deadline after destroying those still out.
   * Calling it again returns the same promise; nobody has to await it.
   */
  close(options?: CallosumClient.CloseOptions): Promise<void>;
  /** `await using`: close() and wait for the sockets still out. */
  [Symbol.asyncDispose](): Promise<void>;
  /** `using`: close(). */
  [Symbol.dispose](): void;
  /** Wires a rover to this pool; `close()` stops it. Its errors are emitted here. */
  rove(
    servers: Record<string, CallosumClient.ServerAddress>,
    options?: CallosumClient.RoverOptions,
  ): CallosumClient.Rover;
  stats(): CallosumClient.Stats;
  /** Monotonic counts of what the pool has done. */
  counters(): CallosumClient.Counters;
  /** Whether the pool ranks connections adaptively (`options.adaptive`). */
  readonly adaptive: boolean;
  /** Per server: connections held, leases, lease-time estimate and weight. Empty unless `adaptive`. */
  servers(): CallosumClient.ServerInfo[];

  on(event: 'error', listener: (error: CallosumClient.CallosumError) => void): this;
  on(event: 'unreachable', listener: (id: string, server: CallosumClient.ServerAddress) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;

  static readonly default: typeof CallosumClient;
}

declare const CallosumClientClass: typeof CallosumClient;
type CallosumClientClass = CallosumClient;

export = CallosumClient;
