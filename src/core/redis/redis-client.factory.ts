import Redis, { type RedisOptions } from 'ioredis';

/** Longest pause between two reconnection attempts while Redis is down. */
const MAX_RECONNECT_DELAY_MS = 2000;

/**
 * Opens the connection the library owns. It is tuned so that nothing waits on Redis and
 * nothing accumulates while Redis is down; lock decisions add their own deadline on top.
 */
export function createRedisClient(connection: RedisOptions): Redis {
  return new Redis({
    ...connection,
    connectionName: 'dpa-distributed-lock-cron',
    // Fail commands at once while disconnected instead of queueing them in memory.
    enableOfflineQueue: false,
    // A lock command sent before a disconnect must not be replayed minutes later.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 5000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS),
  });
}
