// Type definitions for callosum-client-tcp (native edition).

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

declare namespace CallosumClient {
  export interface Options {
    /** Most connections kept. Default 100; a falsy value means 100. A positive safe integer. */
    MAX_SLOTS?: number;
    /** Most callers of `acquire()` waiting at once; past it they are rejected with ERR_CALLOSUM_QUEUE_FULL. Default Infinity. */
    maxWaiting?: number;
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
    closed: boolean;
  }

  /** A socket as the pool marks it (compatibility with the original: reserved, read only). */
  export type PooledSocket<S extends Socket = Socket> = S & {
    readonly _slot: number;
    readonly _leased: boolean;
    readonly _destroyed: boolean;
    readonly _destroySocket: () => void;
  };

  /** Codes of the errors this package reports. */
  export type ErrorCode =
    | 'ERR_CALLOSUM_INVALID_SLOT'
    | 'ERR_CALLOSUM_NOT_A_SOCKET'
    | 'ERR_CALLOSUM_SOCKET_HELD'
    | 'ERR_CALLOSUM_NOT_LEASED'
    | 'ERR_CALLOSUM_ACQUIRE_TIMEOUT'
    | 'ERR_CALLOSUM_QUEUE_FULL'
    | 'ERR_CALLOSUM_CLOSED'
    | 'ERR_CALLOSUM_NO_SERVERS'
    | 'ERR_CALLOSUM_BAD_SLOT_LINE'
    | 'ERR_CALLOSUM_CLOSED_EARLY'
    | 'ERR_CALLOSUM_HANDSHAKE_TIMEOUT'
    | 'ERR_CALLOSUM_BAD_OPTION'
    | 'ERR_CALLOSUM_BAD_SERVER'
    | 'ERR_CALLOSUM_BAD_SERVER_ID'
    | 'ABORT_ERR'
    | 'ERR_INVALID_ARG_TYPE'
    | 'ERR_OUT_OF_RANGE';

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
    /** Ceiling of the back-off of an unreachable server, ms. Default 30000. */
    maxBackoff?: number;
    /** A source of numbers in [0, 1), for repeatable runs. Default Math.random. */
    random?: () => number;
    /** A monotonic clock in ms for the back-off (a test hook). Default performance.now. */
    now?: () => number;
  }

  /** Offers the pool a connection to a random known server every interval. */
  export class Rover extends EventEmitter {
    constructor(options?: RoverOptions);
    addServer(id: string, server: ServerAddress): this;
    dropServer(id: string): this;
    start(): this;
    stop(): this;
    /** Runs one tick now; returns the id of the server chosen, or undefined. */
    connect(): string | undefined;
    /** The known servers, by id. */
    readonly servers: Record<string, ServerAddress>;
    /** Whether the interval timer runs. */
    readonly running: boolean;
    /** Attempts still connecting or handshaking. */
    readonly pending: number;
    on(event: 'connection', listener: (slot: number, socket: Socket) => void): this;
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

  /** Offers a connection on `slot`: kept (possibly displacing the highest slot) or destroyed. */
  newConnection(slot: number, socket: Socket): void;
  /** Internal in the original; the same as `newConnection` here. */
  insertSocket(slot: number, socket: Socket): void;
  /** Lends the idle live socket with the lowest slot, or `undefined` if none. */
  getConnection(): CallosumClient.PooledSocket | undefined;
  /** Gives back a socket lent by `getConnection` or `acquire`. */
  returnConnection(socket: Socket): void;
  /** A leased socket: at once if one is idle, else after waiting (FIFO). */
  acquire(options?: CallosumClient.AcquireOptions): Promise<CallosumClient.PooledSocket>;
  /** Stops lending and keeping: idle sockets destroyed now, leased ones when returned, waiters rejected. */
  close(): void;
  /** Wires a rover to this pool; `close()` stops it. Its errors are emitted here. */
  rove(servers: Record<string, CallosumClient.ServerAddress>, options?: CallosumClient.RoverOptions): CallosumClient.Rover;
  stats(): CallosumClient.Stats;

  on(event: 'error', listener: (error: CallosumClient.CallosumError) => void): this;
  on(event: 'unreachable', listener: (id: string, server: CallosumClient.ServerAddress) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;

  static readonly default: typeof CallosumClient;
}

declare const CallosumClientClass: typeof CallosumClient;
type CallosumClientClass = CallosumClient;

export = CallosumClient;
