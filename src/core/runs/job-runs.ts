import type { LockEvents } from '../events/lock-events';
import type { JobDefinition, Occurrence } from '../jobs/job-definition';
import { setImmediate } from '../clock';
import { backoffDelay, sleep } from '../waits';
import type { LockStore } from '../lock-store';
import type { EngineOptions } from '../options/resolve-options';
import { hasPolicies } from '../policies/job-policies';
import { PolicyRunner } from '../policies/policy-runner';
import { policySchedule } from '../policies/policy-support';
import type { GuardedRuns } from './guarded-runs';
import type { LockRegistry } from './lock-registry';
import type { TriggerListener } from './trigger-listener';
import type { DriftWatch } from './drift-watch';
import { logDaylightSavingSkip, logSkip } from './skip-log';

/** How soon an occurrence waiting behind a run tries again, at first and at most. */
const BUFFERED_RETRY_MS = 100;
const BUFFERED_MAX_RETRY_MS = 1_000;

/**
 * Defined jobs' runs: the ones their scheduler starts (`run`), and the ones their policies owe
 * (`adopt` hands a job with `catchUp` or `retry` to the policy runner).
 */
export class JobRuns {
  private readonly policies: PolicyRunner;
  private readonly events: LockEvents;
  private readonly heldHere = (name: string): boolean => this.registry.isBusy(name);
  /** Aborted when closing starts: occurrences waiting behind a run stop waiting. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly options: EngineOptions,
    private readonly store: LockStore,
    private readonly runs: GuardedRuns,
    private readonly registry: LockRegistry,
    events: LockEvents,
    /** Takes operators' manual triggers (`manualTriggers`); unset when off. */
    private readonly triggers: TriggerListener | undefined,
    /** Which jobs another definition owns now (schedule drift); unset without operations or a single Redis. */
    private readonly drift: DriftWatch | undefined,
  ) {
    this.events = events;
    this.policies = new PolicyRunner(options, store, runs, events, (job) => drift?.skips(job) ?? false);
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
    if (this.drift?.skips(job.name)) return this.skippedForDrift(job, name);
    const occurrence = job.occurrenceNow(this.options.clock);
    if (occurrence === undefined) {
      logDaylightSavingSkip(this.options, job.name);
      return undefined;
    }
    // A job without a policy goes straight to the run: no extra promise on the hot path.
    const outcome = occurrence.ledger
      ? await this.runOnce(job, name, fn, occurrence)
      : await this.runs.run(name, job.ttlMs, fn, job.settings, occurrence);
    // Off this run's path and the next's: naming the next occurrence then asks the cron parser nothing.
    if (occurrence.tick !== undefined) setImmediate(prepareNextOccurrence, job);
    if (outcome.ran) return outcome.result;
    if (outcome.reason === 'buffered') return this.runWhenReleased(job, name, fn, occurrence.tick!);
    logSkip(this.options, job.name, name, outcome.reason, this.heldHere);
    return undefined;
  }

  /**
   * An occurrence buffered behind the run in progress (`overlap: 'buffer-one'`): tried again from
   * 100 ms, backing off to 1 s, until it runs here, runs elsewhere, or the application shuts down.
   */
  private async runWhenReleased<T>(
    job: JobDefinition,
    name: string,
    fn: () => T | Promise<T>,
    tick: number,
  ): Promise<Awaited<T> | undefined> {
    const occurrence = job.occurrence(tick, 'schedule', 1, 'buffered');
    for (let retry = 0; !this.stopping.signal.aborted; retry++) {
      await sleep(backoffDelay(retry, BUFFERED_RETRY_MS, BUFFERED_MAX_RETRY_MS), { wakeOn: this.stopping.signal });
      const outcome = await this.runOnce(job, name, fn, occurrence);
      if (outcome.ran) return outcome.result;
      if (outcome.reason === 'held') continue;
      logSkip(this.options, job.name, name, outcome.reason, this.heldHere);
      return undefined;
    }
    return undefined;
  }

  /** One run of `occurrence`; a failure of a job with a policy goes to its retry policy, and is rethrown. */
  private async runOnce<T>(job: JobDefinition, name: string, fn: () => T | Promise<T>, occurrence: Occurrence) {
    try {
      const run = await this.runs.run(name, job.ttlMs, fn, job.settings, occurrence);
      if (run.ran && occurrence.ledger) this.policies.succeeded(job, occurrence.tick!);
      return run;
    } catch (error) {
      if (occurrence.ledger) this.policies.failed(job, occurrence.tick!, occurrence.attempt, occurrence.trigger, error);
      throw error;
    }
  }

  /**
   * Starts the policies of `job` (`catchUp`, `retry`, `recoverCrashed`), whose runs call `handler`; throws a
   * `JobPolicyError` when they cannot keep their promise here. A job without one is left alone.
   */
  adopt(job: JobDefinition, handler: () => unknown): void {
    this.triggers?.offer(job, handler);
    if (!hasPolicies(job.policies)) return;
    this.policies.adopt(job, policySchedule(job, this.options, this.store), handler);
  }

  /** Another definition of `job` owns its occurrences now: said as any skip is, Redis not asked. */
  private skippedForDrift(job: JobDefinition, name: string): undefined {
    logSkip(this.options, job.name, name, 'drift', this.heldHere);
    if (this.events.active)
      this.events.emit({ type: 'skipped', key: name, job: job.name, tick: undefined, reason: 'drift' });
    return undefined;
  }

  /** No policy starts a run from now on (closing). */
  stop(): void {
    this.stopping.abort();
    this.policies.close();
    this.triggers?.close();
    this.drift?.close();
  }
}

function prepareNextOccurrence(job: JobDefinition): void {
  job.cronSchedule()?.prepareNext();
}
