import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { ENVIRONMENT_VARIABLES, lockOptionsFromEnvironment } from '../core/options/environment';
import type { DistributedLockOptions } from '../core/options/lock-options';
import { resolveLockOptions } from '../core/options/resolve-options';
import { createRedisClient } from '../core/redis/create-client';
import type { RedisTarget } from '../core/options/redis-target';
import { urlCredentials } from '../core/validation';
import { raceDeadline } from '../core/waits';
import { UsageError } from './arguments';

/** Where the CLI's own flags name a setting in an error; the variables were checked when read. */
const FLAG_NAMES = { ...ENVIRONMENT_VARIABLES, url: '--url', keyPrefix: '--prefix' };

/** Variables that describe the app rather than where Redis is: they apply with --url too. */
const APP_VARIABLES = ['REDIS_KEY_PREFIX', 'DISTRIBUTED_LOCK_HISTORY_RETENTION_MS'];

/** Where Redis is, how the app names its keys, and the secrets to keep out of any output. */
export interface ConnectionSettings {
  readonly target: RedisTarget;
  readonly keyPrefix: string;
  readonly historyRetentionMs: number;
  readonly secrets: readonly string[];
}

/**
 * Resolves where Redis is as the module does: `--url` (and `--prefix`), else the `REDIS_*`
 * variables. Throws the library's configuration error naming the flag or variable at fault.
 */
export function connectionSettings(
  url: string | undefined,
  prefix: string | undefined,
  env: Record<string, string | undefined>,
): ConnectionSettings {
  const read = url === undefined ? env : Object.fromEntries(APP_VARIABLES.map((name) => [name, env[name]]));
  const options: DistributedLockOptions = {
    ...lockOptionsFromEnvironment(read),
    ...(url !== undefined && { url }),
    ...(prefix !== undefined && { keyPrefix: prefix }),
    logger: false,
  };
  const secrets = [options.password, options.sentinelPassword, options.url && passwordOf(options.url)].filter(
    (secret): secret is string => !!secret,
  );
  const { target, keyPrefix, historyRetentionMs } = resolveLockOptions(options, FLAG_NAMES);
  if (target.kind === 'quorum') {
    throw new UsageError(
      'REDIS_NODES names a quorum of independent Redis servers; point --url at one of them (each keeps its own records; to pause or resume a job, do it on a majority of them, one --url at a time)',
    );
  }
  return { target, keyPrefix, historyRetentionMs, secrets };
}

/**
 * Opens a client to `target` and waits until it is ready, at most `timeoutMs`. Nothing is retried
 * and every command has the same deadline, so the CLI never hangs on an unreachable Redis.
 */
export async function connect(target: RedisTarget, timeoutMs: number): Promise<Redis | Cluster> {
  const tuning: RedisOptions = {
    connectionName: 'dpa-distributed-lock-cron-cli',
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    sentinelRetryStrategy: () => null,
    // A socket that never connected never reports "close": ioredis would wait this long to destroy it.
    disconnectTimeout: 200,
  } as RedisOptions;
  if (target.kind === 'client' || target.kind === 'quorum') throw new UsageError(`cannot inspect ${target.label}`);
  const client = createRedisClient(target, tuning, { lazyConnect: true, clusterRetryStrategy: () => null });
  let lastError: Error | undefined;
  // Without a listener ioredis prints each connection error itself; the reason is reported once, below.
  client.on('error', (error: Error) => (lastError = error));
  try {
    await raceDeadline(client.connect(), timeoutMs, () => {
      throw new Error(`no answer within ${timeoutMs} ms`);
    });
    return client;
  } catch (error) {
    if (client.status !== 'end') client.disconnect();
    const reason = lastError?.message || (error as Error).message || String(error);
    throw new RedisUnreachableError(`cannot reach Redis at ${target.label}: ${reason}`);
  }
}

/** Redis could not be reached or refused the connection: exit code 1. */
export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError';
}

/** The password part of a URL, however malformed, so it can be kept out of every message. */
function passwordOf(url: string): string | undefined {
  const auth = urlCredentials(url)?.auth;
  if (auth === undefined) return undefined;
  const colon = auth.indexOf(':');
  const raw = colon === -1 ? auth : auth.slice(colon + 1);
  return raw.length >= 3 ? raw : undefined; // a one- or two-character "secret" would blank out ordinary text
}
