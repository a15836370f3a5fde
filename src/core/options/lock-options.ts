import type { EngineClock } from '../clock';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Cluster, Redis } from 'ioredis';
import type { LockEventListener } from '../events/lock-events';
import type { LockLogger } from '../logger';
import type { OpenTelemetryOptions } from '../telemetry/open-telemetry-options';

/** What a lock decision does when Redis cannot answer in time: run the job, or skip it. */
export type FailMode = 'open' | 'closed';

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
  /**
   * Skip guarded runs while Redis has never been reached since the process started, whatever the
   * fail mode: a wrong address at boot then runs nothing unlocked, while an outage after the first
   * connection still fails open. Recommended where a duplicate run costs more than a skipped one
   * (with the health check as a readiness probe). @default false
   */
  failClosedUntilConnected?: boolean;
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
  /**
   * Let operators run a guarded `@Cron`/`@Interval`/`@Timeout` job now, or fill a missed
   * occurrence (`fleet.trigger`, the CLI's `trigger`, the dashboard): this replica then reads the
   * trigger stream and sets its listener record once a second, and reads `TIME` every ten seconds
   * (the dashboard's clock offsets), on its connection, whatever the number of jobs; one replica
   * that runs the job takes each trigger. @default false
   */
  manualTriggers?: boolean;
  /** How many run records to keep per lock name (approximately: a capped stream). @default 100 */
  historyLength?: number;
  /** A lock name's run history expires this long after its last record. @default 604800000 (7 days) */
  historyRetentionMs?: number;
  /** This process's name in lock tokens and run records. @default `<hostname>:<pid>` */
  replicaName?: string;
  /**
   * The wall clock that names occurrences and the timers job policies wait on. For simulations:
   * the testing module's `FleetSimulator` sets it. @default the system's
   */
  clock?: EngineClock;
}

export const DEFAULT_LOCK_OPTIONS = {
  keyPrefix: '',
  failMode: 'open',
  failClosedUntilConnected: false,
  acquireTimeoutMs: 1000,
  fencing: false,
  shutdownTimeoutMs: 25_000,
  stateRetentionMs: 86_400_000,
  waitForReplicas: 0,
  skipLogLevel: 'verbose',
  operations: true,
  manualTriggers: false,
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
  failClosedUntilConnected: 'failClosedUntilConnected',
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
  manualTriggers: 'manualTriggers',
  historyLength: 'historyLength',
  historyRetentionMs: 'historyRetentionMs',
  replicaName: 'replicaName',
  clock: 'clock',
};
