import type { DistributedLockOptions, SettingNames } from './lock-options';
import { resolveLockOptions } from './resolve-options';

/** The environment variable behind each option. */
export const ENVIRONMENT_VARIABLES: SettingNames = {
  url: 'REDIS_URL',
  host: 'REDIS_HOST',
  port: 'REDIS_PORT',
  username: 'REDIS_USERNAME',
  password: 'REDIS_PASSWORD',
  db: 'REDIS_DB',
  tls: 'REDIS_TLS',
  client: 'client (no variable)',
  sentinels: 'REDIS_SENTINELS',
  name: 'REDIS_SENTINEL_NAME',
  sentinelPassword: 'REDIS_SENTINEL_PASSWORD',
  clusterNodes: 'REDIS_CLUSTER_NODES',
  nodes: 'REDIS_NODES',
  keyPrefix: 'REDIS_KEY_PREFIX',
  failMode: 'DISTRIBUTED_LOCK_FAIL_MODE',
  failClosedUntilConnected: 'DISTRIBUTED_LOCK_FAIL_CLOSED_UNTIL_CONNECTED',
  manualTriggers: 'DISTRIBUTED_LOCK_MANUAL_TRIGGERS',
  acquireTimeoutMs: 'DISTRIBUTED_LOCK_ACQUIRE_TIMEOUT_MS',
  fencing: 'DISTRIBUTED_LOCK_FENCING',
  shutdownTimeoutMs: 'DISTRIBUTED_LOCK_SHUTDOWN_TIMEOUT_MS',
  tickAheadLimitMs: 'DISTRIBUTED_LOCK_TICK_AHEAD_LIMIT_MS',
  stateRetentionMs: 'DISTRIBUTED_LOCK_STATE_RETENTION_MS',
  waitForReplicas: 'DISTRIBUTED_LOCK_WAIT_FOR_REPLICAS',
  logger: 'logger (no variable)',
  onEvent: 'onEvent (no variable)',
  openTelemetry: 'DISTRIBUTED_LOCK_OPEN_TELEMETRY',
  skipLogLevel: 'DISTRIBUTED_LOCK_SKIP_LOG_LEVEL',
  operations: 'DISTRIBUTED_LOCK_OPERATIONS',
  historyLength: 'DISTRIBUTED_LOCK_HISTORY_LENGTH',
  historyRetentionMs: 'DISTRIBUTED_LOCK_HISTORY_RETENTION_MS',
  replicaName: 'DISTRIBUTED_LOCK_REPLICA_NAME',
  clock: 'clock (no variable)',
};

type Environment = Record<string, string | undefined>;

/**
 * Reads lock options from `REDIS_*` (and `DISTRIBUTED_LOCK_*`) variables and validates them,
 * naming the variable and its value on error. Empty variables count as unset. `REDIS_URL`, when
 * set, wins over `REDIS_HOST` and `REDIS_PORT`.
 *
 * @example
 * DistributedLockModule.forRoot({ ...lockOptionsFromEnvironment(), failMode: 'closed' })
 */
export function lockOptionsFromEnvironment(env: Environment = process.env): DistributedLockOptions {
  const read = (option: keyof DistributedLockOptions): string | undefined => {
    const value = env[ENVIRONMENT_VARIABLES[option]];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const url = read('url');
  const sentinels = toAddresses(read('sentinels'));
  const clusterNodes = toAddresses(read('clusterNodes'));
  // REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES and REDIS_NODES say where Redis is: they win over host/port.
  const hostPortApply = [url, sentinels, clusterNodes, read('nodes')].every((value) => value === undefined);
  const options: DistributedLockOptions = {
    url,
    host: hostPortApply ? read('host')?.trim() : undefined,
    port: hostPortApply ? toInteger(read('port')) : undefined,
    sentinels,
    name: read('name')?.trim(),
    sentinelPassword: read('sentinelPassword'),
    clusterNodes,
    // Split only before a scheme: a comma inside a password must not cut a URL in two.
    nodes: read('nodes')
      ?.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i)
      .map((node) => node.trim())
      .filter(Boolean),
    username: read('username'),
    password: read('password'),
    db: toInteger(read('db')),
    tls: toBoolean(read('tls')),
    keyPrefix: read('keyPrefix'),
    failMode: read('failMode')?.trim().toLowerCase() as DistributedLockOptions['failMode'],
    failClosedUntilConnected: toBoolean(read('failClosedUntilConnected')),
    acquireTimeoutMs: toInteger(read('acquireTimeoutMs')),
    fencing: toBoolean(read('fencing')),
    shutdownTimeoutMs: toInteger(read('shutdownTimeoutMs')),
    tickAheadLimitMs: toInteger(read('tickAheadLimitMs')),
    stateRetentionMs: toInteger(read('stateRetentionMs')),
    waitForReplicas: toInteger(read('waitForReplicas')),
    skipLogLevel: toSkipLogLevel(read('skipLogLevel')),
    openTelemetry: toBoolean(read('openTelemetry')),
    operations: toBoolean(read('operations')),
    manualTriggers: toBoolean(read('manualTriggers')),
    historyLength: toInteger(read('historyLength')),
    historyRetentionMs: toInteger(read('historyRetentionMs')),
    replicaName: read('replicaName')?.trim(),
  };
  for (const key of Object.keys(options) as (keyof DistributedLockOptions)[]) {
    if (options[key] === undefined) delete options[key];
  }
  // Validate now, with variable names, so the error points at the variable to fix.
  resolveLockOptions({ ...options, logger: false }, ENVIRONMENT_VARIABLES);
  return options;
}

/** A whole-number string becomes a number; anything else is kept so validation reports it as typed. */
function toInteger(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  return /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : (raw as unknown as number);
}

/** `host:port,host:port` (IPv6 as `[::1]:26379`); an unparsable entry is kept so validation reports it. */
function toAddresses(raw: string | undefined): DistributedLockOptions['sentinels'] {
  if (raw === undefined) return undefined;
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(entry);
      return match ? { host: match[1], port: Number(match[2]) } : ({ host: entry } as never);
    });
}

/** `verbose`, `debug`, `log`, or a false word (`false`, `off`, …) for none. */
function toSkipLogLevel(raw: string | undefined): DistributedLockOptions['skipLogLevel'] {
  if (raw === undefined) return undefined;
  const word = raw.trim().toLowerCase();
  if (['0', 'false', 'no', 'off', 'none'].includes(word)) return false;
  return word as DistributedLockOptions['skipLogLevel'];
}

function toBoolean(raw: string | undefined): boolean | undefined {
  if (raw === undefined) return undefined;
  const word = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(word)) return true;
  if (['0', 'false', 'no', 'off'].includes(word)) return false;
  return raw as unknown as boolean;
}
