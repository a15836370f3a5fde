import { InvalidLockArgumentError } from '../errors';
import type { JobPoliciesRecord } from '../fleet/fleet-records';
import { checkDaylightSaving, type DaylightSavingPolicy } from '../jobs/daylight-saving';
import { expectations, MAX_TIMER_MS } from '../validation';

/**
 * Catch-up: an occurrence within `windowMs` before now that no replica started (the fleet was
 * down, or every replica skipped it) is run later, on one replica.
 */
export interface CatchUpPolicy {
  /** How far back a missed occurrence is still run, in ms; at most the module's `stateRetentionMs`. */
  readonly windowMs: number;
  /** `'latest'`: only the most recent missed occurrence; `'all'`: each, oldest first, at most `max`. */
  readonly runs: 'latest' | 'all';
  /** With `runs: 'all'`, how many missed occurrences one look runs at most (the newest ones). @default 10 */
  readonly max?: number;
}

/** Retry: a run that throws is attempted again, on whichever replica takes it, before the next occurrence. */
export interface RetryPolicy {
  /** Attempts in all, the first run included (2 or more). */
  readonly attempts: number;
  /** The pause before the first retry, in ms, doubling per retry (with jitter). */
  readonly backoffMs: number;
  /** The longest pause between attempts. @default backoffMs × 2^(attempts − 2) */
  readonly maxBackoffMs?: number;
}

/** What a `@Cron` job does about occurrences that did not run, or did not succeed. Every policy is off by default. */
export interface JobPolicies {
  readonly catchUp?: CatchUpPolicy;
  readonly retry?: RetryPolicy;
  /**
   * Run again, once, an occurrence whose run started but never ended because its process died
   * (SIGKILL, OOM, power loss): after its lock's TTL, once its heartbeat has expired, within the
   * occurrence's period (or `catchUp.windowMs`). A slow run that is alive is never taken over.
   */
  readonly recoverCrashed?: boolean;
  /**
   * When an occurrence comes due while the previous run still holds the lock: `'skip'` it (the
   * default), or `'buffer-one'`: run it right after that run ends, on one replica, at most one waiting.
   */
  readonly overlap?: 'skip' | 'buffer-one';
  /** The wall times a daylight-saving change skips or repeats in the schedule's zone (see `DaylightSavingPolicy`). */
  readonly dst?: DaylightSavingPolicy;
  /**
   * Pause the job fleet-wide once this many occurrences in a row failed (each after its retries),
   * with a note naming the last error; a success starts the count anew, and so does `resume`.
   */
  readonly pauseAfterFailures?: number;
}

/** The policies of a job, checked, with their defaults. */
export interface ResolvedJobPolicies {
  readonly catchUp: Required<CatchUpPolicy> | undefined;
  readonly retry: Required<RetryPolicy> | undefined;
  readonly recoverCrashed: boolean;
  readonly overlap: 'skip' | 'buffer-one';
  readonly dst: DaylightSavingPolicy | undefined;
  readonly pauseAfterFailures: number | undefined;
}

/** How many missed occurrences `runs: 'all'` runs per look by default. */
export const DEFAULT_CATCH_UP_MAX = 10;

/** Checks a job's policies where they are written (the decorator), naming the option at fault. */
export function checkJobPolicies(policies: JobPolicies): ResolvedJobPolicies {
  const { recoverCrashed = false, overlap = 'skip' } = policies;
  if (typeof recoverCrashed !== 'boolean') {
    throw new InvalidLockArgumentError('recoverCrashed', recoverCrashed, 'true or false');
  }
  if (overlap !== 'skip' && overlap !== 'buffer-one') {
    throw new InvalidLockArgumentError('overlap', overlap, "'skip' or 'buffer-one'");
  }
  const { pauseAfterFailures } = policies;
  if (
    pauseAfterFailures !== undefined &&
    (!Number.isSafeInteger(pauseAfterFailures) || pauseAfterFailures < 1 || pauseAfterFailures > 1_000)
  ) {
    throw new InvalidLockArgumentError('pauseAfterFailures', pauseAfterFailures, 'an integer from 1 to 1000');
  }
  const dst = checkDaylightSaving(policies.dst);
  const [catchUp, retry] = [checkCatchUp(policies.catchUp), checkRetry(policies.retry)];
  return { catchUp, retry, recoverCrashed, overlap, dst, pauseAfterFailures };
}

/** The policies as a job record keeps them (`JobRecord.policies`), or undefined for a job without one. */
export function policiesRecord(policies: ResolvedJobPolicies): JobPoliciesRecord | undefined {
  if (!hasPolicies(policies)) return undefined;
  const { catchUp, retry, recoverCrashed, overlap, dst, pauseAfterFailures } = policies;
  return {
    ...(dst && { dst }),
    ...(pauseAfterFailures && { pauseAfterFailures }),
    ...(catchUp && { catchUp }),
    ...(retry && { retry }),
    ...(recoverCrashed && { recoverCrashed }),
    ...(overlap === 'buffer-one' && { overlap }),
  };
}

/** Whether any policy is on: a job without one pays nothing for them. */
export function hasPolicies(policies: ResolvedJobPolicies): boolean {
  const { catchUp, retry, recoverCrashed, overlap, dst, pauseAfterFailures } = policies;
  return (
    catchUp !== undefined ||
    retry !== undefined ||
    recoverCrashed ||
    overlap === 'buffer-one' ||
    dst !== undefined ||
    pauseAfterFailures !== undefined
  );
}

function checkCatchUp(catchUp: CatchUpPolicy | undefined): Required<CatchUpPolicy> | undefined {
  if (catchUp === undefined) return undefined;
  if (catchUp === null || typeof catchUp !== 'object') {
    throw new InvalidLockArgumentError('catchUp', catchUp, "an object such as { windowMs: 3_600_000, runs: 'latest' }");
  }
  const { windowMs, runs, max = DEFAULT_CATCH_UP_MAX } = catchUp;
  if (!expectations.positiveMs.test(windowMs)) {
    throw new InvalidLockArgumentError('catchUp.windowMs', windowMs, expectations.positiveMs.expected);
  }
  if (runs !== 'latest' && runs !== 'all')
    throw new InvalidLockArgumentError('catchUp.runs', runs, "'latest' or 'all'");
  if (!expectations.positiveCount.test(max) || max > 1_000) {
    throw new InvalidLockArgumentError('catchUp.max', max, 'a positive integer, at most 1000');
  }
  return { windowMs, runs, max };
}

function checkRetry(retry: RetryPolicy | undefined): Required<RetryPolicy> | undefined {
  if (retry === undefined) return undefined;
  if (retry === null || typeof retry !== 'object') {
    throw new InvalidLockArgumentError('retry', retry, 'an object such as { attempts: 3, backoffMs: 30_000 }');
  }
  const { attempts, backoffMs } = retry;
  if (!Number.isSafeInteger(attempts) || attempts < 2 || attempts > 100) {
    throw new InvalidLockArgumentError('retry.attempts', attempts, 'an integer from 2 to 100 (the first run included)');
  }
  if (!expectations.positiveMs.test(backoffMs)) {
    throw new InvalidLockArgumentError('retry.backoffMs', backoffMs, expectations.positiveMs.expected);
  }
  const maxBackoffMs = retry.maxBackoffMs ?? Math.min(MAX_TIMER_MS, backoffMs * 2 ** (attempts - 2));
  if (!expectations.positiveMs.test(maxBackoffMs) || maxBackoffMs < backoffMs) {
    throw new InvalidLockArgumentError('retry.maxBackoffMs', maxBackoffMs, 'at least retry.backoffMs');
  }
  return { attempts, backoffMs, maxBackoffMs };
}
