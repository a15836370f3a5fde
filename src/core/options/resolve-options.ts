import { hostname } from 'node:os';
import { ConflictingLockOptionsError, DistributedLockConfigError } from '../errors';
import type { LockEventListener } from '../events/lock-events';
import { consoleLogger, type LockLogger, silentLogger } from '../logger';
import type { OpenTelemetryOptions } from '../telemetry/open-telemetry-options';
import { expectations } from '../validation';
import {
  DEFAULT_LOCK_OPTIONS,
  type DistributedLockOptions,
  OPTION_NAMES,
  type FailMode,
  type SettingNames,
} from './lock-options';
import { type RedisTarget, resolveTarget } from './redis-target';
import { checkerFor } from './setting-check';
import { isCluster } from '../redis/is-cluster';
import { type EngineClock, SYSTEM_CLOCK } from '../clock';

/** The options after defaults and validation, as the engine uses them. */
export interface ResolvedLockOptions {
  readonly target: RedisTarget;
  readonly keyPrefix: string;
  readonly failMode: FailMode;
  readonly failClosedUntilConnected: boolean;
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
  readonly manualTriggers: boolean;
  readonly historyLength: number;
  readonly historyRetentionMs: number;
  readonly replicaName: string;
  readonly clock: EngineClock;
}

/** The options of one engine: resolved, plus its identity in the ledger and its heartbeat key (jobs with a policy). */
export interface EngineOptions extends ResolvedLockOptions {
  readonly instanceId: string;
}

/** WAIT goes to the server holding the key: one Redis or a Sentinel-managed master, not a Cluster or quorum. */
function canWaitForReplicas(target: RedisTarget): boolean {
  if (target.kind === 'client') return !isCluster(target.client);
  return target.kind === 'standalone' || target.kind === 'sentinel';
}

/**
 * Merges defaults into `options` and validates them: the one place options are resolved, whoever
 * reads them (the engine, the environment reader, the CLI). Every bad value is reported with the
 * name the user wrote (`port`, or `REDIS_PORT` when `names` maps to variables) and the value.
 */
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
    failClosedUntilConnected:
      check('failClosedUntilConnected', expectations.boolean) ?? DEFAULT_LOCK_OPTIONS.failClosedUntilConnected,
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
    manualTriggers: check('manualTriggers', expectations.boolean) ?? DEFAULT_LOCK_OPTIONS.manualTriggers,
    historyLength: check('historyLength', expectations.positiveCount) ?? DEFAULT_LOCK_OPTIONS.historyLength,
    historyRetentionMs: check('historyRetentionMs', expectations.positiveMs) ?? DEFAULT_LOCK_OPTIONS.historyRetentionMs,
    replicaName: check('replicaName', expectations.nonEmptyString) ?? `${hostname()}:${process.pid}`,
    clock: check('clock', expectations.clock) ?? SYSTEM_CLOCK,
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
