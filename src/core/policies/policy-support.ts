import { JobPolicyError } from '../errors';
import type { CronSchedule } from '../jobs/cron-schedule';
import type { JobDefinition } from '../jobs/job-definition';
import type { LockStore } from '../lock-store';
import type { ResolvedLockOptions } from '../options/resolve-options';

/**
 * The schedule of a job whose policies can keep their promise here, or a `JobPolicyError` that says
 * why not: a policy needs a `@Cron` schedule (occurrences to name), a fixed lock name (one ledger),
 * operations on (the pause flags and records it reads), one Redis deployment or the testing store
 * (a quorum of independent nodes has no ledger), and a window the state outlives.
 */
export function policySchedule(job: JobDefinition, options: ResolvedLockOptions, store: LockStore): CronSchedule {
  const { catchUp } = job.policies;
  const { retry, recoverCrashed, overlap, dst } = job.policies;
  const option = catchUp
    ? 'catchUp'
    : retry
      ? 'retry'
      : recoverCrashed
        ? 'recoverCrashed'
        : overlap === 'buffer-one'
          ? 'overlap'
          : dst
            ? 'dst'
            : 'pauseAfterFailures';
  const refuse = (reason: string, at = option): never => {
    throw new JobPolicyError(job.name, at, reason);
  };
  const schedule = job.cronSchedule();
  if (schedule === null) {
    refuse('it applies to @Cron jobs only (an @Interval or @Timeout has no occurrences to catch up or retry).');
  }
  if (job.key === undefined) {
    refuse('the lock name is computed per call (a key function); give the job a fixed key.');
  }
  if (!options.operations) refuse('operations is false; a policy keeps its ledger beside the job records.');
  if (!store.keepsLedger) {
    refuse(
      `locks live in ${store.label}, which keeps no occurrence ledger (a quorum of independent nodes would need a quorum for it too).`,
    );
  }
  if (catchUp && catchUp.windowMs > options.stateRetentionMs) {
    refuse(
      `the window (${catchUp.windowMs} ms) is longer than what Redis keeps of the job's occurrences ` +
        `(stateRetentionMs ${options.stateRetentionMs} ms): raise stateRetentionMs or narrow the window.`,
      'catchUp.windowMs',
    );
  }
  return schedule!;
}
