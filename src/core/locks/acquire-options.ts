import { InvalidLockArgumentError } from '../errors';
import { type Expectation, expectations } from '../validation';

/** Options of `acquire` and `withLock`. */
export interface AcquireOptions {
  /** Keep the lock at least this long after acquisition, even if released sooner (ShedLock's lockAtLeastFor). @default 0 */
  minHoldMs?: number;
  /** How long to keep retrying while the lock is held elsewhere. @default 0 (one attempt) */
  waitMs?: number;
  /** First retry delay; it doubles per attempt up to `maxRetryDelayMs`, with random jitter. @default 50 */
  retryDelayMs?: number;
  /** @default 1000 */
  maxRetryDelayMs?: number;
  /** Cancels the wait: `acquire` rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * The scheduled occurrence this acquisition serves, as a time (see `cronTick`). An acquisition
   * for an occurrence at or before the latest one already served under this key is refused,
   * whoever served it. `@DistributedLock` passes the `@Cron` occurrence itself.
   */
  tick?: number | Date;
  /** Extend the lock every third of its TTL while held, and abort its signal if that fails. Default: on in `withLock`, off in `acquire`. */
  autoExtend?: boolean;
  /**
   * Issue a fencing token (`lock.fencingToken`), a number that grows with every fenced
   * acquisition of the key. It costs a Lua call instead of a plain `SET NX PX`. Default: the
   * engine's `fencing` option (off unless set).
   */
  fencing?: boolean;
  /**
   * `withLock` and the decorator: keep the lock as `currentLock()` across the run's awaits, in
   * everything it calls (AsyncLocalStorage). Without it, `currentLock()` answers until the run's
   * first `await`. On Node < 24 the first such run slows every later promise of the process
   * (AsyncLocalStorage's promise hooks), so it is off by default. @default false
   */
  lockContext?: boolean;
}

/** `AcquireOptions` after checking, with defaults filled in (`fencing` stays unset for the engine's default). */
export interface AcquireSettings {
  readonly minHoldMs: number;
  readonly waitMs: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly tick: number | undefined;
  readonly fencing: boolean | undefined;
  readonly autoExtend: boolean;
  readonly lockContext: boolean;
  readonly signal: AbortSignal | undefined;
}

/** Validates a lock name and TTL, throwing a `TypeError` that names the bad value. */
export function assertLockArguments(key: unknown, ttlMs: unknown): void {
  assertKey(key);
  assertTtl(ttlMs);
}

/** Validates a lock TTL: a positive integer number of ms that a timer can hold. */
export function assertTtl(ttlMs: unknown): asserts ttlMs is number {
  assertArgument('ttlMs', ttlMs, expectations.positiveMs);
}

/** Validates a lock name: a non-empty string whose keys share a Redis Cluster slot. */
export function assertKey(key: unknown): asserts key is string {
  assertArgument('key', key, expectations.lockName);
}

function assertArgument<T>(name: string, value: unknown, rule: Expectation<T>): asserts value is T {
  if (!rule.test(value)) throw new InvalidLockArgumentError(name, value, rule.expected);
}

/**
 * Checks `AcquireOptions` (and so the decorator's) and fills in defaults; `autoExtend` defaults to
 * `autoExtendByDefault` (on for `withLock` and the decorator, off for `acquire`).
 */
export function checkAcquireOptions(options: AcquireOptions, autoExtendByDefault: boolean): AcquireSettings {
  const {
    minHoldMs = 0,
    waitMs = 0,
    retryDelayMs = 50,
    maxRetryDelayMs = 1000,
    tick,
    signal,
    fencing,
    autoExtend = autoExtendByDefault,
    lockContext = false,
  } = options;
  assertArgument('minHoldMs', minHoldMs, expectations.nonNegativeMs);
  assertArgument('waitMs', waitMs, expectations.nonNegativeMs);
  assertArgument('retryDelayMs', retryDelayMs, expectations.positiveMs);
  assertArgument('maxRetryDelayMs', maxRetryDelayMs, expectations.positiveMs);
  assertArgument('autoExtend', autoExtend, expectations.boolean);
  assertArgument('lockContext', lockContext, expectations.boolean);
  if (fencing !== undefined) assertArgument('fencing', fencing, expectations.boolean);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidLockArgumentError('signal', signal, 'an AbortSignal');
  }
  const tickMs = tick instanceof Date ? tick.getTime() : tick;
  if (tickMs !== undefined && !Number.isSafeInteger(tickMs)) {
    throw new InvalidLockArgumentError('tick', tick, 'a Date or an integer number of ms since the epoch');
  }
  return { minHoldMs, waitMs, retryDelayMs, maxRetryDelayMs, tick: tickMs, fencing, autoExtend, lockContext, signal };
}

/** The settings of `acquire` and `acquireLock` called without options, checked once. */
export const ACQUIRE_DEFAULTS: AcquireSettings = Object.freeze(checkAcquireOptions({}, false));

/** The settings of `withLock` called without options, checked once. */
export const WITH_LOCK_DEFAULTS: AcquireSettings = Object.freeze(checkAcquireOptions({}, true));
