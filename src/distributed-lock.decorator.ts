import { Inject } from '@nestjs/common';
import { InvalidLockArgumentError, LockServiceMissingError } from './core/errors';
import { JobDefinition } from './core/jobs/job-definition';
import type { DaylightSavingPolicy } from './core/jobs/daylight-saving';
import { type CatchUpPolicy, checkJobPolicies, type RetryPolicy } from './core/policies/job-policies';
import { assertLockArguments, assertTtl, checkAcquireOptions } from './core/locks/acquire-options';
import { cronScheduleOf } from './cron-metadata';
import { DistributedLockService } from './distributed-lock.service';
import { copyMethodMetadata } from './utils/copy-method-metadata';

/**
 * A lock name computed per call from the method's arguments, with the instance as `this`,
 * e.g. `(tenantId: string) => \`billing:${tenantId}\``.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LockKeyFactory = (this: any, ...args: any[]) => string;

/** The options-object form of `@DistributedLock`. */
export interface DistributedLockDecoratorOptions {
  /** Lock name shared by every replica that must not run the method at once, or a function of the call's arguments. */
  key: string | LockKeyFactory;
  /** How long the lock lives if its holder dies without releasing it, in ms. It is extended while the method runs. */
  ttlMs: number;
  /**
   * Keep the lock at least this long after the run starts, even if the method ends sooner
   * (ShedLock's lockAtLeastFor). Useful for `@Interval` handlers, whose replicas fire out of step.
   * @default 0
   */
  minHoldMs?: number;
  /** Extend the lock every ttlMs/3 while the method runs. @default true */
  autoExtend?: boolean;
  /** Issue a fencing token, read with `currentLock().fencingToken`. @default the module's `fencing` option */
  fencing?: boolean;
  /**
   * Keep `currentLock()` answering across the method's awaits, in everything it calls
   * (AsyncLocalStorage, which on Node < 24 slows every promise of the process once used). Without
   * it, call `currentLock()` before the method's first `await`. @default false
   */
  lockContext?: boolean;
  /**
   * Let other jobs of the application use the same fixed `key`: they then never run at once, and
   * each one skips while another holds the lock. Without it, jobs sharing a key are named in a
   * warning at startup, as one of them may rarely get to run. @default false
   */
  sharedKey?: boolean;
  /**
   * Run an occurrence that no replica started (the fleet was down, Redis unreachable under
   * fail-closed) later, on one replica, while it is within `windowMs`: `runs: 'latest'` the most
   * recent one only, `'all'` each (at most `max`, default 10, the newest), oldest first. For a
   * `@Cron` job with a fixed `key`; checked at boot. @default off
   */
  catchUp?: CatchUpPolicy;
  /**
   * Attempt a run that throws again, up to `attempts` in all (the first included), after
   * `backoffMs` doubling per retry (with jitter, up to `maxBackoffMs`), on whichever replica takes
   * it, and never once the next occurrence is due. For a `@Cron` job with a fixed `key`. @default off
   */
  retry?: RetryPolicy;
  /**
   * Run again, once, on another replica, an occurrence whose run started but never ended because
   * its process died (SIGKILL, OOM): after the lock's TTL and the process's heartbeat (6 s) have
   * expired, within the occurrence's period (or `catchUp.windowMs`). A slow run that is alive (its
   * lock extended) is never taken over. For a `@Cron` job with a fixed `key`. @default false
   */
  recoverCrashed?: boolean;
  /**
   * An occurrence that comes due while the previous run still holds the lock: `'skip'` it, or
   * `'buffer-one'`: run it right after that run ends (within about a second), on one replica, at
   * most one waiting (later ones are skipped). For a `@Cron` job with a fixed `key`. @default 'skip'
   */
  overlap?: 'skip' | 'buffer-one';
  /**
   * The wall times a daylight-saving change skips or repeats in the schedule's zone:
   * `springForward: 'run-at-end-of-gap' | 'skip'`, `fallBack: 'once' | 'twice'` (see docs/policies.md's
   * table). For a `@Cron` job with a fixed `key`. @default as the `cron` package fires them
   */
  dst?: DaylightSavingPolicy;
  /**
   * Pause the job on every replica once this many occurrences in a row failed (each after its
   * retries), with a note naming the last error, an error line and a `paused` event; a success
   * counts anew, and so does `resume`. For a `@Cron` job with a fixed `key`. @default off
   */
  pauseAfterFailures?: number;
}

/** Where a guarded method keeps its job (Reflect metadata), for the explorer that declares it. */
export const GUARDED_JOB = 'DISTRIBUTED_LOCK:GUARDED_JOB';

/** What `@DistributedLock` leaves on the method it guards. */
export interface GuardedJobMetadata {
  readonly job: JobDefinition;
  /** Its fixed key may be another job's too, deliberately (`sharedKey`). */
  readonly sharedKey: boolean;
  /** The method as written: what a policy's run (a catch-up, a retry) calls, with the instance as `this`. */
  readonly handler: (...args: unknown[]) => unknown;
}

// The symbol's text is what Nest prints when the service cannot be injected: it says what to import.
const LOCK_SERVICE = Symbol(
  'DistributedLockService, provided by DistributedLockModule: import DistributedLockModule in your root module',
);

type LockedInstance = Record<symbol, DistributedLockService | undefined>;

/**
 * Runs the method on one replica at a time: the replica that takes the lock runs it and releases
 * the lock when it settles; the others skip it and resolve `undefined`. On a `@Cron` handler each
 * scheduled tick runs once across replicas, even when their clocks differ. Place it above or below
 * `@Cron`, `@Interval` or `@Timeout`. Inside the method, `currentLock()` gives the lock's
 * `fencingToken` and `signal`.
 *
 * @example
 * @Cron(CronExpression.EVERY_DAY_AT_6AM)
 * @DistributedLock('cron:daily-sync', 300_000)
 * async dailySync(): Promise<void> {}
 */
export function DistributedLock(key: string | LockKeyFactory, ttlMs: number): MethodDecorator;
export function DistributedLock(options: DistributedLockDecoratorOptions): MethodDecorator;
export function DistributedLock(
  keyOrOptions: string | LockKeyFactory | DistributedLockDecoratorOptions,
  ttl?: number,
): MethodDecorator {
  const {
    key,
    ttlMs,
    minHoldMs,
    autoExtend,
    fencing,
    lockContext,
    sharedKey = false,
    catchUp,
    retry,
    recoverCrashed,
    overlap,
    dst,
    pauseAfterFailures,
  } = normalizeArguments(keyOrOptions, ttl);
  const options = { minHoldMs, autoExtend, fencing, lockContext };
  const policies = { catchUp, retry, recoverCrashed, overlap, dst, pauseAfterFailures };
  // Checked when the decorator is written, before it is applied (JobDefinition checks them again per method).
  if (typeof key === 'function') assertTtl(ttlMs);
  else assertLockArguments(key, ttlMs);
  checkAcquireOptions(options, true);
  checkJobPolicies(policies);
  const injectLockService = Inject(DistributedLockService);

  return (target, methodName, descriptor: PropertyDescriptor) => {
    const handler: unknown = descriptor.value;
    const className = target.constructor.name;
    const name = `${className}.${String(methodName)}`;
    const job = new JobDefinition({
      name,
      ttlMs,
      key: typeof key === 'function' ? undefined : key,
      options,
      // Read on the first call: `@Cron` may be applied after this decorator.
      schedule: () => cronScheduleOf(guarded),
      computedKeyLabel: 'the key computed by @DistributedLock',
      policies,
    });
    if (typeof handler !== 'function') {
      throw new InvalidLockArgumentError(`@DistributedLock target ${name}`, handler, 'a method');
    }
    // Property injection reaches the service of the app that created this instance.
    injectLockService(target, LOCK_SERVICE);

    const guarded = async function (this: LockedInstance, ...args: unknown[]): Promise<unknown> {
      const locks = this?.[LOCK_SERVICE];
      if (!locks) throw new LockServiceMissingError(className, String(methodName));
      const lockName = typeof key === 'function' ? (key.apply(this, args) as unknown as string) : undefined;
      return locks.runDefinedJob(job, () => handler.apply(this, args), lockName);
    };
    copyMethodMetadata(handler, guarded); // @Cron may already be on `handler` when it sits below us
    const metadata: GuardedJobMetadata = { job, sharedKey, handler: handler as GuardedJobMetadata['handler'] };
    Reflect.defineMetadata(GUARDED_JOB, metadata, guarded);
    descriptor.value = guarded;
  };
}

function normalizeArguments(
  keyOrOptions: string | LockKeyFactory | DistributedLockDecoratorOptions,
  ttlMs: number | undefined,
): DistributedLockDecoratorOptions {
  if (typeof keyOrOptions === 'object' && keyOrOptions !== null) {
    if (ttlMs !== undefined) {
      throw new InvalidLockArgumentError(
        'the second argument of @DistributedLock(options)',
        ttlMs,
        'omitted: put ttlMs in the options',
      );
    }
    return keyOrOptions;
  }
  return { key: keyOrOptions, ttlMs: ttlMs as number };
}
