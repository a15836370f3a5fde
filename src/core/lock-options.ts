import { hostname } from 'node:os';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Cluster, Redis } from 'ioredis';
import type { LockEventListener } from './lock-events';
import type { OpenTelemetryOptions } from './telemetry/open-telemetry-options';
import { ConflictingLockOptionsError, DistributedLockConfigError } from './errors';
import { checkerFor, isCluster, type RedisTarget, resolveTarget } from './redis/redis-target';
import { expectations } from './validation';

/** What a lock decision does when Redis cannot answer in time: run the job, or skip it. */
export type FailMode = 'open' | 'closed';

/** Where the library writes. Nest's `Logger` fits; so does `console`. */
export interface LockLogger {
  verbose?(message: string): void;
  debug?(message: string): void;
  log?(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Logs an informational line: at `log` level when the logger has one, else as a warning. */
export function logInfo(logger: LockLogger, message: string): void {
  if (logger.log) logger.log(message);
  else logger.warn(message);
}

/** A host and port, as in Sentinel and Cluster node lists. */
export interface RedisAddress {
  host: string;
  port: number;
}

/** How to reach one Redis when the library opens its own connection. */
export interface RedisConnectionOptions {
  /** `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS). Give either a URL or host/port. */
  url?: string;
  /** @default 'localhost' */
  host?: string;
  /** @default 6379 */
  port?: number;
  /** Redis ACL user (Redis 6+). */
  username?: string;
  password?: string;
  /** @default 0 */
  db?: number;
  /** `true`, or Node TLS options, to connect over TLS. */
  tls?: boolean | TlsOptions;
}

/** Options of `DistributedLockModule.forRoot()` and of the framework-agnostic `LockEngine`. */
export interface DistributedLockOptions extends RedisConnectionOptions {
  /**
   * An ioredis `Redis` (standalone or Sentinel) or `Cluster` client to reuse instead of opening a
   * connection. The library never closes it. Cannot be combined with connection options.
   */
  client?: Redis | Cluster;
  /** Redis Sentinel: the sentinels that know the master named `name`. */
  sentinels?: RedisAddress[];
  /** Redis Sentinel: the master's name, e.g. `mymaster`. */
  name?: string;
  /** Redis Sentinel: the sentinels' own password, if they have one. */
  sentinelPassword?: string;
  /** Redis Cluster: one or more nodes to discover the cluster from. */
  clusterNodes?: RedisAddress[];
  /**
   * Redlock quorum: three or more independent Redis masters, each a URL, connection options or an
   * ioredis client. A lock is held when a majority grants it.
   */
  nodes?: (string | RedisConnectionOptions | Redis)[];
  /** Prepended to every key the library writes, e.g. `myapp:` → `myapp:lock:{<key>}`. @default '' */
  keyPrefix?: string;
  /** `open` runs the job when Redis cannot decide in time; `closed` skips it. @default 'open' */
  failMode?: FailMode;
  /** How long one lock decision may wait on Redis before the fail mode applies. @default 1000 */
  acquireTimeoutMs?: number;
  /**
   * Issue a fencing token with every acquisition (the default of each call's `fencing` option).
   * It costs a Lua call instead of a plain `SET NX PX`, and a small hash per lock name. @default false
   */
  fencing?: boolean;
  /**
   * How long closing (Nest's shutdown, `close()`) waits for runs in progress to finish. They keep
   * their lock, still extended, meanwhile; runs still going after it are told through their
   * signal and their locks left to expire by TTL, never deleted. Fits Kubernetes' default 30 s
   * grace period. @default 25000
   */
  shutdownTimeoutMs?: number;
  /**
   * A scheduled tick further ahead of the Redis server's clock than this is refused without being
   * recorded, and the replica warns about its clock. @default max(ttlMs, 60000)
   */
  tickAheadLimitMs?: number;
  /**
   * How long the state of a fenced or scheduled lock name (its latest ticks and fencing counter)
   * stays in Redis after its last use; at least twice the TTL and twice the schedule's period.
   * A tick older than this (by the Redis clock) is refused. @default 86400000 (one day)
   */
  stateRetentionMs?: number;
  /**
   * After an acquisition that serves a scheduled tick or issues a fencing token, wait until this
   * many replicas have it (`WAIT`, within `acquireTimeoutMs`), so a failover cannot lose it; when
   * they do not acknowledge in time, the fail mode decides. One round trip more, plus the
   * replication lag, and that connection's other commands wait behind it. Single Redis and
   * Sentinel only. @default 0 (off)
   */
  waitForReplicas?: number;
  /**
   * Where to log outages and lost locks, and skipped runs (at `verbose`, else `debug`); `false` for
   * silence. @default Nest Logger / console
   */
  logger?: LockLogger | false;
  /**
   * The level of the line a skipped job logs (held elsewhere, occurrence served, paused…); `false`
   * logs none. Every losing replica skips every occurrence: it is the normal case, not news.
   * @default 'verbose' (a logger without `verbose`, like `console`, gets `debug`)
   */
  skipLogLevel?: 'verbose' | 'debug' | 'log' | false;
  /** Called with every `LockEvent` (acquired, skipped, ran, extended, lost, outages, drained). See `onEvent()`. */
  onEvent?: LockEventListener;
  /**
   * Metrics (runs, skips, fail-open decisions, lost locks, acquisition and run durations, locks
   * held) and a span around each guarded run, through `@opentelemetry/api`, an optional peer to
   * install. `true` reports to the global providers your OpenTelemetry SDK registers; or name them.
   * Without an SDK, nothing is recorded. @default false
   */
  openTelemetry?: boolean | OpenTelemetryOptions;
  /**
   * What operators see and steer (the CLI, the engine's `fleet`): each replica
   * declares its guarded jobs at startup, each guarded run is recorded with its lock's release, and
   * each job acquisition reads the job's pause flag inside the same script. `false` turns all three
   * off: a job without schedule or fencing is then a plain `SET NX`. @default true
   */
  operations?: boolean;
  /** How many run records to keep per lock name (approximately: a capped stream). @default 100 */
  historyLength?: number;
  /** A lock name's run history expires this long after its last record. @default 604800000 (7 days) */
  historyRetentionMs?: number;
  /** This process's name in lock tokens and run records. @default `<hostname>:<pid>` */
  replicaName?: string;
}

/** The options after defaults and validation, as the engine uses them. */
export interface ResolvedLockOptions {
  readonly target: RedisTarget;
  readonly keyPrefix: string;
  readonly failMode: FailMode;
  readonly acquireTimeoutMs: number;
  readonly fencing: boolean;
  readonly shutdownTimeoutMs: number;
  /** Undefined: max(ttlMs, 60 s) per acquisition. */
  readonly tickAheadLimitMs: number | undefined;
  readonly stateRetentionMs: number;
  readonly waitForReplicas: number;
  readonly logger: LockLogger;
  readonly onEvent: LockEventListener | undefined;
  /** Where metrics and spans go (`true`: the global providers); undefined when off. */
  readonly openTelemetry: true | OpenTelemetryOptions | undefined;
  readonly skipLogLevel: 'verbose' | 'debug' | 'log' | false;
  readonly operations: boolean;
  readonly historyLength: number;
  readonly historyRetentionMs: number;
  readonly replicaName: string;
}

export const DEFAULT_LOCK_OPTIONS = {
  host: 'localhost',
  port: 6379,
  db: 0,
  keyPrefix: '',
  failMode: 'open',
  acquireTimeoutMs: 1000,
  fencing: false,
  shutdownTimeoutMs: 25_000,
  stateRetentionMs: 86_400_000,
  waitForReplicas: 0,
  skipLogLevel: 'verbose',
  operations: true,
  historyLength: 100,
  historyRetentionMs: 604_800_000,
} as const satisfies DistributedLockOptions;

/** The name each option goes by in error messages; the environment reader swaps in variable names. */
export type SettingNames = Record<keyof DistributedLockOptions, string>;

export const OPTION_NAMES: SettingNames = {
  url: 'url',
  host: 'host',
  port: 'port',
  username: 'username',
  password: 'password',
  db: 'db',
  tls: 'tls',
  client: 'client',
  sentinels: 'sentinels',
  name: 'name',
  sentinelPassword: 'sentinelPassword',
  clusterNodes: 'clusterNodes',
  nodes: 'nodes',
  keyPrefix: 'keyPrefix',
  failMode: 'failMode',
  acquireTimeoutMs: 'acquireTimeoutMs',
  fencing: 'fencing',
  shutdownTimeoutMs: 'shutdownTimeoutMs',
  tickAheadLimitMs: 'tickAheadLimitMs',
  stateRetentionMs: 'stateRetentionMs',
  waitForReplicas: 'waitForReplicas',
  logger: 'logger',
  onEvent: 'onEvent',
  openTelemetry: 'openTelemetry',
  skipLogLevel: 'skipLogLevel',
  operations: 'operations',
  historyLength: 'historyLength',
  historyRetentionMs: 'historyRetentionMs',
  replicaName: 'replicaName',
};

const silentLogger: LockLogger = { warn() {}, error() {} };

const consoleLogger: LockLogger = {
  log: (message) => console.log(`[dpa-distributed-lock-cron] ${message}`),
  warn: (message) => console.warn(`[dpa-distributed-lock-cron] ${message}`),
  error: (message) => console.error(`[dpa-distributed-lock-cron] ${message}`),
};

/**
 * Merges defaults into `options` and validates them. Every bad value is reported with the
 * name the user wrote (`port`, or `REDIS_PORT` when `names` maps to variables) and the value.
 */
/** WAIT goes to the server holding the key: one Redis or a Sentinel-managed master, not a Cluster or quorum. */
function canWaitForReplicas(target: RedisTarget): boolean {
  if (target.kind === 'client') return !isCluster(target.client);
  return target.kind === 'standalone' || target.kind === 'sentinel';
}

export function resolveLockOptions(
  options: DistributedLockOptions = {},
  names: SettingNames = OPTION_NAMES,
): ResolvedLockOptions {
  if (options === null || typeof options !== 'object') {
    throw new DistributedLockConfigError('options', options, 'an object');
  }
  rejectUnknownOptions(options);
  const check = checkerFor(options, names);
  const target = resolveTarget(options, names, check);
  const waitForReplicas = check('waitForReplicas', expectations.count) ?? DEFAULT_LOCK_OPTIONS.waitForReplicas;
  if (waitForReplicas > 0 && !canWaitForReplicas(target)) {
    throw new ConflictingLockOptionsError(
      [
        names.waitForReplicas,
        names[target.kind === 'quorum' ? 'nodes' : target.kind === 'cluster' ? 'clusterNodes' : 'client'],
      ],
      'WAIT is answered by one server for its own replicas: use it with a single Redis or Sentinel.',
    );
  }
  return {
    target,
    waitForReplicas,
    keyPrefix: check('keyPrefix', expectations.keyPrefix) ?? DEFAULT_LOCK_OPTIONS.keyPrefix,
    failMode: check('failMode', expectations.failMode) ?? DEFAULT_LOCK_OPTIONS.failMode,
    acquireTimeoutMs: check('acquireTimeoutMs', expectations.positiveMs) ?? DEFAULT_LOCK_OPTIONS.acquireTimeoutMs,
    fencing: check('fencing', expectations.boolean) ?? DEFAULT_LOCK_OPTIONS.fencing,
    shutdownTimeoutMs: check('shutdownTimeoutMs', expectations.nonNegativeMs) ?? DEFAULT_LOCK_OPTIONS.shutdownTimeoutMs,
    tickAheadLimitMs: check('tickAheadLimitMs', expectations.positiveInteger),
    stateRetentionMs: check('stateRetentionMs', expectations.positiveInteger) ?? DEFAULT_LOCK_OPTIONS.stateRetentionMs,
    logger: resolveLogger(options.logger, names.logger),
    onEvent: check('onEvent', expectations.listener),
    openTelemetry: resolveOpenTelemetry(options.openTelemetry, names.openTelemetry),
    skipLogLevel: check('skipLogLevel', expectations.skipLogLevel) ?? DEFAULT_LOCK_OPTIONS.skipLogLevel,
    operations: check('operations', expectations.boolean) ?? DEFAULT_LOCK_OPTIONS.operations,
    historyLength: check('historyLength', expectations.positiveCount) ?? DEFAULT_LOCK_OPTIONS.historyLength,
    historyRetentionMs: check('historyRetentionMs', expectations.positiveMs) ?? DEFAULT_LOCK_OPTIONS.historyRetentionMs,
    replicaName: check('replicaName', expectations.nonEmptyString) ?? `${hostname()}:${process.pid}`,
  };
}

function rejectUnknownOptions(options: object): void {
  for (const option of Object.keys(options)) {
    if (!(option in OPTION_NAMES)) {
      throw new DistributedLockConfigError(
        'options',
        option,
        `made of known options only (${Object.keys(OPTION_NAMES).join(', ')}); unknown option`,
      );
    }
  }
}

function resolveLogger(logger: unknown, setting: string): LockLogger {
  if (logger === undefined) return consoleLogger;
  if (logger === false) return silentLogger;
  const candidate = logger as Partial<LockLogger> | null;
  if (candidate && typeof candidate.warn === 'function' && typeof candidate.error === 'function') {
    return candidate as LockLogger;
  }
  throw new DistributedLockConfigError(setting, logger, 'false or an object with warn() and error() methods');
}

/** `true` (the global providers), the providers to use, or undefined when off. */
function resolveOpenTelemetry(value: unknown, setting: string): true | OpenTelemetryOptions | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true || (value !== null && typeof value === 'object' && !Array.isArray(value))) {
    return value as true | OpenTelemetryOptions;
  }
  throw new DistributedLockConfigError(setting, value, 'true, false or { meterProvider?, tracerProvider? }');
}
