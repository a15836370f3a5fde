import type { RedisOptions } from 'ioredis';
import { nextTick, nextTickIsFaked } from '../clock';
import type { LockEvents } from '../events/lock-events';
import type { LockLogger } from '../logger';
import type { RedisTarget } from '../options/redis-target';
import type { LockStore } from '../lock-store';
import { QuorumStore } from './quorum-store';
import { createRedisClient } from './create-client';
import { RedisStore } from './redis-store';

/** Longest pause between two reconnection attempts while Redis is down. */
const MAX_RECONNECT_DELAY_MS = 2000;

const reconnectDelay = (attempt: number): number => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS);

/**
 * Settings of every connection the library opens, so that nothing waits on Redis and nothing
 * accumulates while it is down; lock decisions add their own deadline on top.
 */
const CONNECTION_TUNING: RedisOptions = {
  connectionName: 'dpa-distributed-lock-cron',
  // Fail commands at once while disconnected instead of queueing them in memory.
  enableOfflineQueue: false,
  // A lock command sent before a disconnect must not be replayed minutes later.
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  connectTimeout: 5000,
  // close() sends QUIT and waits for the socket first: past that, ioredis's own wait before it
  // destroys the socket (2 s by default) would only keep a timer alive after close() resolved.
  disconnectTimeout: 100,
  retryStrategy: reconnectDelay,
  sentinelRetryStrategy: reconnectDelay,
};

/**
 * Creates a client with the real `process.nextTick` in place: ioredis opens its socket on it,
 * and Jest's default fake timers replace it, so a client created under them would not connect
 * until the test advances time. The swap lasts only while the constructor runs, synchronously.
 */
function withRealNextTick<T>(create: () => T): T {
  if (!nextTickIsFaked()) return create();
  const faked = process.nextTick;
  process.nextTick = nextTick;
  try {
    return create();
  } finally {
    process.nextTick = faked;
  }
}

/** What every store of an engine shares. */
export interface StoreSettings {
  /** How long one call may take, connection wait included. */
  readonly timeoutMs: number;
  readonly logger: LockLogger;
  /** What the outage warning says happens meanwhile. */
  readonly whileDown: string;
  /** Replicas that must acknowledge a tick or fencing acquisition; 0 for none. */
  readonly waitForReplicas: number;
  /** Where outages are reported. */
  readonly events?: LockEvents;
}

/** Builds the store for a target, opening the connections it needs. */
export function createLockStore(target: RedisTarget, settings: StoreSettings): LockStore {
  const { timeoutMs, logger, whileDown, waitForReplicas, events } = settings;
  switch (target.kind) {
    case 'quorum':
      return new QuorumStore(
        target.nodes.map((node) => createLockStore(node, settings) as RedisStore),
        target.label,
        timeoutMs,
      );
    case 'client':
      return new RedisStore(target.client, false, target.label, timeoutMs, logger, whileDown, waitForReplicas, events);
    default: {
      const client = withRealNextTick(() =>
        createRedisClient(target, CONNECTION_TUNING, {
          enableOfflineQueue: false,
          clusterRetryStrategy: reconnectDelay,
        }),
      );
      // WAIT is answered by one server for its replicas: not by a Cluster (refused at option checks).
      const replicas = target.kind === 'cluster' ? 0 : waitForReplicas;
      return new RedisStore(client, true, target.label, timeoutMs, logger, whileDown, replicas, events);
    }
  }
}
