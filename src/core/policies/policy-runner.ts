import { describeError } from '../errors';
import type { JobDefinition } from '../jobs/job-definition';
import type { CronSchedule } from '../jobs/cron-schedule';
import { heartbeatKeyOf, jobSinceField, ledgerKeysOf, lockKeyOf, stateKeyOf } from '../keys';
import type { LockStore } from '../lock-store';
import { lockRequest } from '../locks/lock-request';
import type { EngineOptions } from '../options/resolve-options';
import type { LockEvents } from '../events/lock-events';
import type { GuardedRuns } from '../runs/guarded-runs';
import { backoffDelay } from '../waits';
import { PauseAfterFailures } from './pause-after-failures';
import { missedOccurrences, recoveryCandidates, retryDue } from './occurrence-rules';
import type { LedgerQuery, LedgerRead, RunTrigger } from './ledger';

/** The longest pause between two looks at a job's ledger. */
const MAX_LOOK_INTERVAL_MS = 60_000;
/** The shortest: a per-second job is looked at every second, not more. */
const MIN_LOOK_INTERVAL_MS = 1_000;
/** At most this many ledger entries per look (a per-second job's day is 86 400). */
const LEDGER_READ_LIMIT = 20_000;
/** After Redis comes back, replicas that ran unlocked (fail-open) send their records first: wait this long. */
const AFTER_RECONNECT_MS = 3_000;
/** A live instance's heartbeat lasts this long; it is set again every third of it. */
export const HEARTBEAT_TTL_MS = 6_000;

/** A job with a policy, adopted by this replica: what it runs and when it next looks. */
interface AdoptedJob {
  readonly job: JobDefinition;
  readonly lockName: string;
  readonly schedule: CronSchedule;
  readonly handler: () => unknown;
  readonly query: Omit<LedgerQuery, 'from'>;
  timer: unknown | undefined;
  /** Whether the store was unreachable at the last look: the next one waits for the others' records. */
  sawOutage: boolean;
  /** The newest missed occurrence `catchUp.max` left out: said once, and left alone after. */
  droppedThrough: number | undefined;
}

/**
 * Runs what a job's policies ask for, over the store interface: the occurrences catch-up finds
 * missed, and the attempts retry owes. Each look reads the job's ledger; each run claims its
 * (occurrence, attempt) there, so replicas looking at once run each of them once. Looks happen at
 * start, every period (1 s to 60 s), and soon after Redis comes back; a failed run is retried from
 * here after its backoff, and by any replica's look if this one is gone.
 */
export class PolicyRunner {
  private readonly jobs: AdoptedJob[] = [];
  private readonly retryTimers = new Set<unknown>();
  private heartbeat: unknown | undefined;
  private closed = false;
  private readonly failures: PauseAfterFailures;

  constructor(
    private readonly options: EngineOptions,
    private readonly store: LockStore,
    private readonly runs: GuardedRuns,
    private readonly events: LockEvents,
    /** Whether another definition of the job owns its occurrences now (schedule drift): nothing is run for it. */
    private readonly drifted: (job: string) => boolean = () => false,
  ) {
    this.failures = new PauseAfterFailures(options, store, events);
  }

  /** Starts looking after `job`, whose runs call `handler`; its schedule and key were checked at boot. */
  adopt(job: JobDefinition, schedule: CronSchedule, handler: () => unknown): void {
    if (this.closed) return;
    const lockName = job.key!;
    const lockKey = lockKeyOf(this.options.keyPrefix, lockName);
    const { occurrences, attempts } = ledgerKeysOf(lockKey);
    // A look keeps the state as long as a claim does: the same retention, from the same request.
    const now = schedule.occurrenceAt(this.options.clock.now()) ?? this.options.clock.now();
    const { keepMs } = lockRequest(this.options, lockName, job.ttlMs, false, job.occurrence(now, 'schedule', 1)).claim!;
    const adopted: AdoptedJob = {
      job,
      lockName,
      schedule,
      handler,
      query: {
        stateKey: stateKeyOf(lockKey),
        occurrencesKey: occurrences,
        attemptsKey: attempts,
        job: job.name,
        tickField: job.occurrence(undefined, 'schedule', 1).tickField,
        sinceField: jobSinceField(job.name),
        definition: schedule.definition,
        limit: LEDGER_READ_LIMIT,
        keepMs,
      },
      timer: undefined,
      sawOutage: false,
      droppedThrough: undefined,
    };
    this.jobs.push(adopted);
    if (this.jobs.length === 1) this.store.preparePolicies();
    this.beat();
    this.lookSoon(adopted, 0);
  }

  /**
   * Keeps this instance's heartbeat set while it runs jobs with a policy: an attempt the ledger
   * says is running on an instance without one is a crashed run (`recoverCrashed`).
   */
  private beat(): void {
    if (this.heartbeat !== undefined || this.closed) return;
    const key = heartbeatKeyOf(this.options.keyPrefix, this.options.instanceId);
    const beat = (): void => {
      void this.store.beat(key, this.options.replicaName, HEARTBEAT_TTL_MS);
      this.heartbeat = this.options.clock.setTimeout(beat, HEARTBEAT_TTL_MS / 3);
    };
    beat();
  }

  /**
   * A run of a job with a policy threw: with `retry`, attempt it again after its backoff, unless
   * attempts are used up or the next occurrence is due by then, which is said as an error. A run
   * the schedule started is logged by the scheduler too; one a policy started, only here.
   */
  failed(job: JobDefinition, tick: number, attempt: number, trigger: RunTrigger, error: unknown): void {
    const adopted = this.jobs.find((candidate) => candidate.job === job);
    const retry = job.policies.retry;
    const what = `${job.name} (occurrence ${new Date(tick).toISOString()}, ${trigger}, attempt ${attempt})`;
    if (!adopted || !retry) {
      if (trigger !== 'schedule') this.options.logger.error(`${what} failed: ${describeError(error)}`);
      if (adopted) this.countEnd(adopted, tick, true, error);
      return;
    }
    const failedAt = this.options.clock.now();
    const deadline = adopted.schedule.occurrenceAfter(failedAt) ?? Infinity;
    const delayMs = backoffDelay(attempt - 1, retry.backoffMs, retry.maxBackoffMs);
    if (attempt >= retry.attempts || failedAt + delayMs >= deadline || this.closed) {
      if (this.events.active) {
        this.events.emit({
          type: 'failed',
          key: adopted.lockName,
          job: job.name,
          tick,
          trigger,
          attempt,
          attempts: attempt,
          error,
        });
      }
      const why =
        attempt >= retry.attempts ? '' : this.closed ? ' (shutting down)' : ' (the next occurrence comes due first)';
      this.options.logger.error(
        `${job.name} failed after ${attempt} attempt(s)${why}: ${describeError(error)} [${what}]`,
      );
      this.countEnd(adopted, tick, true, error);
      return;
    }
    this.options.logger.warn(`${what} failed, attempting again in ${Math.round(delayMs)} ms: ${describeError(error)}`);
    const timer = this.options.clock.setTimeout(() => {
      this.retryTimers.delete(timer);
      void this.runOccurrence(adopted, tick, 'retry', attempt + 1);
    }, delayMs);
    this.retryTimers.add(timer);
  }

  /** A run of a job with a policy succeeded: its count of failed occurrences (`pauseAfterFailures`) ends. */
  succeeded(job: JobDefinition, tick: number): void {
    const adopted = this.jobs.find((candidate) => candidate.job === job);
    if (adopted) this.countEnd(adopted, tick, false, undefined);
  }

  private countEnd(adopted: AdoptedJob, tick: number, failed: boolean, error: unknown): void {
    this.failures.count(adopted.job, adopted.lockName, adopted.query, { tick, failed, error });
  }

  /** Stops looking and retrying; runs in progress are the drain's. */
  close(): void {
    this.closed = true;
    for (const job of this.jobs) this.options.clock.clearTimeout(job.timer);
    for (const timer of this.retryTimers) this.options.clock.clearTimeout(timer);
    this.retryTimers.clear();
    this.options.clock.clearTimeout(this.heartbeat);
  }

  private lookSoon(job: AdoptedJob, delayMs: number): void {
    this.options.clock.clearTimeout(job.timer);
    job.timer = this.options.clock.setTimeout(() => void this.look(job), delayMs);
  }

  /** One look at a job's ledger: run what it owes, then look again in one period (1 s to 60 s). */
  private async look(job: AdoptedJob): Promise<void> {
    if (this.closed) return;
    job.schedule.occurrenceAt(this.options.clock.now()); // finds the period around now
    const interval = lookInterval(job);
    if (!this.store.isReady()) {
      job.sawOutage = true;
      return this.lookSoon(job, Math.min(interval, AFTER_RECONNECT_MS));
    }
    if (job.sawOutage) {
      job.sawOutage = false;
      return this.lookSoon(job, AFTER_RECONNECT_MS);
    }
    try {
      if (!this.drifted(job.job.name)) await this.runOwed(job);
    } catch (error) {
      this.options.logger.error(`${job.job.name}: looking for missed occurrences failed: ${describeError(error)}`);
    }
    if (!this.closed) this.lookSoon(job, interval);
  }

  private async runOwed(job: AdoptedJob): Promise<void> {
    const { catchUp, retry, recoverCrashed } = job.job.policies;
    const now = this.options.clock.now();
    const from = now - Math.max(catchUp?.windowMs ?? 0, job.schedule.periodMs, MAX_LOOK_INTERVAL_MS);
    const ledger = await this.store.readLedger({ ...job.query, from });
    if (!ledger || this.closed) return;
    if (recoverCrashed) await this.recoverCrashed(job, ledger, now);
    // Second passes of a repeated wall time that `cron` does not fire (`dst.fallBack: 'twice'`).
    const known = new Set(ledger.entries.map((entry) => entry.tick));
    for (const second of job.schedule.secondPassesBetween(from, now)) {
      if (!known.has(second)) await this.runOccurrence(job, second, 'schedule', 1);
    }
    // An occurrence buffered by a replica that is gone (or has not tried again yet) runs once the lock is free.
    for (const waiting of ledger.entries.filter((entry) => entry.status === 'buffered')) {
      await this.runOccurrence(job, waiting.tick, 'schedule', 1, 'buffered');
    }
    if (retry) {
      for (const due of retryDue(ledger, retry, job.schedule, now)) {
        await this.runOccurrence(job, due.tick, 'retry', due.attempt);
      }
    }
    if (!catchUp) return;
    const { run, dropped, droppedThrough } = missedOccurrences(ledger, catchUp, job.schedule, now, job.droppedThrough);
    if (droppedThrough !== undefined) job.droppedThrough = droppedThrough;
    if (dropped > 0) {
      this.options.logger.warn(
        `${job.job.name}: ${dropped} missed occurrence(s) older than the newest ${catchUp.max} are not caught up ` +
          `(catchUp.max ${catchUp.max}).`,
      );
    }
    for (const tick of run) {
      if (this.closed) return;
      await this.runOccurrence(job, tick, 'catch-up', 1);
    }
  }

  /** Runs again, once, each attempt the ledger says is running on an instance whose heartbeat expired. */
  private async recoverCrashed(job: AdoptedJob, ledger: LedgerRead, now: number): Promise<void> {
    const windowMs = job.job.policies.catchUp?.windowMs;
    const candidates = recoveryCandidates(ledger, this.options.instanceId, job.job.ttlMs, job.schedule, windowMs, now);
    if (candidates.length === 0) return;
    const holders = [...new Set(candidates.map((entry) => entry.holder!))];
    const alive = await this.store.alive(holders.map((holder) => heartbeatKeyOf(this.options.keyPrefix, holder)));
    if (!alive) return;
    const dead = new Set(holders.filter((_, i) => !alive[i]));
    for (const crashed of candidates.filter((entry) => dead.has(entry.holder!))) {
      const said = () =>
        this.options.logger.warn(
          `${job.job.name}: the run of ${new Date(crashed.tick).toISOString()} (attempt ${crashed.attempt}) never ` +
            'ended and its process is gone; running it again here.',
        );
      await this.runOccurrence(job, crashed.tick, 'recovery', crashed.attempt + 1, crashed.raw, said);
    }
  }

  /** Runs one (occurrence, attempt) if this replica claims it; a failure goes to `failed`. */
  private async runOccurrence(
    job: AdoptedJob,
    tick: number,
    trigger: RunTrigger,
    attempt: number,
    replaces = '',
    /** Said once the claim is granted, before the handler runs. */
    announce?: () => void,
  ): Promise<void> {
    if (this.closed) return;
    const occurrence = job.job.occurrence(tick, trigger, attempt, replaces);
    const handler = announce
      ? () => {
          announce();
          return job.handler();
        }
      : job.handler;
    try {
      const run = await this.runs.run(job.lockName, job.job.ttlMs, handler, job.job.settings, occurrence);
      if (run.ran) this.countEnd(job, tick, false, undefined);
    } catch (error) {
      this.failed(job.job, tick, attempt, trigger, error);
    }
  }
}

/**
 * How often a job's ledger is looked at: every period, from 1 s to 60 s, so a missed occurrence is
 * caught up within one period or 60 s, whichever is shorter; with `retry`, at least every
 * `backoffMs` (from 1 s), so an attempt a replica that is gone owed is taken up about on time;
 * with `recoverCrashed`, every half of the longer of the lock's TTL and the heartbeat's.
 */
function lookInterval({ job, schedule }: AdoptedJob): number {
  const byPeriod = Math.min(MAX_LOOK_INTERVAL_MS, schedule.periodMs || MAX_LOOK_INTERVAL_MS);
  const byRetry = job.policies.retry ? job.policies.retry.backoffMs : Infinity;
  // A crashed run can be taken over once its lock and its instance's heartbeat have expired.
  const byRecovery = job.policies.recoverCrashed ? Math.max(job.ttlMs, HEARTBEAT_TTL_MS) / 2 : Infinity;
  return Math.max(MIN_LOOK_INTERVAL_MS, Math.min(byPeriod, byRetry, byRecovery));
}
