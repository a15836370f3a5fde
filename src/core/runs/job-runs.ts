import type { JobDefinition } from '../jobs/job-definition';
import type { LockStore } from '../lock-store';
import type { ResolvedLockOptions } from '../options/resolve-options';
import { hasPolicies } from '../policies/job-policies';
import { PolicyRunner } from '../policies/policy-runner';
import { policySchedule } from '../policies/policy-support';
import type { GuardedRuns } from './guarded-runs';
import type { LockRegistry } from './lock-registry';
import { logSkip } from './skip-log';

/**
 * Defined jobs' runs: the ones their scheduler starts (`run`), and the ones their policies owe
 * (`adopt` hands a job with `catchUp` or `retry` to the policy runner).
 */
export class JobRuns {
  private readonly policies: PolicyRunner;
  private readonly heldHere = (name: string): boolean => this.registry.isBusy(name);

  constructor(
    private readonly options: ResolvedLockOptions,
    private readonly store: LockStore,
    private readonly runs: GuardedRuns,
    private readonly registry: LockRegistry,
  ) {
    this.policies = new PolicyRunner(options, store, runs);
  }

  /**
   * Runs `job` for the occurrence its schedule names now: `fn` when the lock is taken, nothing
   * (resolving `undefined`, logged at `skipLogLevel`) otherwise. A failure of a job with a policy
   * is handed to its retry policy, and rethrown for the scheduler.
   */
  async run<T>(
    job: JobDefinition,
    fn: () => T | Promise<T>,
    lockName: string | undefined,
  ): Promise<Awaited<T> | undefined> {
    const name = job.lockName(lockName);
    const occurrence = job.occurrenceNow();
    let outcome;
    try {
      outcome = await this.runs.run(name, job.ttlMs, fn, job.settings, occurrence);
    } catch (error) {
      if (occurrence.ledger) this.policies.failed(job, occurrence.tick!, 1, 'schedule', error);
      throw error;
    }
    if (outcome.ran) return outcome.result;
    logSkip(this.options, job.name, name, outcome.reason, this.heldHere);
    return undefined;
  }

  /**
   * Starts the policies of `job` (`catchUp`, `retry`, `recoverCrashed`), whose runs call `handler`; throws a
   * `JobPolicyError` when they cannot keep their promise here. A job without one is left alone.
   */
  adopt(job: JobDefinition, handler: () => unknown): void {
    if (!hasPolicies(job.policies)) return;
    this.policies.adopt(job, policySchedule(job, this.options, this.store), handler);
  }

  /** No policy starts a run from now on (closing). */
  stop(): void {
    this.policies.close();
  }
}
