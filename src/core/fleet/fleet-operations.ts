import { describeError, DistributedLockError } from '../errors';
import type { LockEvents, LockPauseEvent } from '../events/lock-events';
import type { LockHandle } from '../locks/lock-handle';
import type { DriftWatch } from '../runs/drift-watch';
import type { ResolvedLockOptions } from '../options/resolve-options';
import type { LockStore, RunHistoryWrite } from '../lock-store';
import { RedisStore } from '../redis/redis-store';
import type { JobDrift } from './definition-drift';
import { FleetInspector, type OverdueJob, type PausedJob } from './fleet-inspector';
import { jobNamesKey, jobsFirstDeclaredKey, jobsKey, runsKeyOf } from '../keys';
import {
  type JobDeclaration,
  type JobRecord,
  type RunRecord,
  runRecordFields,
  type RunRecordOutcome,
} from './fleet-records';
import type { RunTrigger } from '../policies/ledger';
import { withDeadline } from './with-deadline';

/** What the fleet's records say needs an operator: paused jobs, and jobs whose live replicas disagree. */
export interface FleetNotices {
  readonly paused: PausedJob[];
  readonly drift: JobDrift[];
}

/** A fleet query may take this many lock deadlines (`acquireTimeoutMs`), and at least the minimum. */
const FLEET_DEADLINE_FACTOR = 5;
const FLEET_DEADLINE_MIN_MS = 1_000;

/**
 * What an engine writes for the operators and reads back for them (`fleet-records.ts`): its jobs'
 * declarations, its runs' records, and the fleet's records through its own connection.
 */
export class FleetOperations {
  private inspector: FleetInspector | undefined;

  constructor(
    private readonly options: ResolvedLockOptions,
    private readonly store: LockStore,
    private readonly events: LockEvents,
    /** Publishes the declared definitions, for schedule drift; unset without operations or a single Redis. */
    private readonly drift?: DriftWatch,
  ) {}

  /** Whether `lock`'s run is recorded: operations on, and a job with a fixed lock name. */
  records(lock: LockHandle): boolean {
    return this.options.operations && lock.tracked;
  }

  /** See `LockEngine.declareJobs`. */
  declare(jobs: readonly JobDeclaration[]): Promise<void> {
    const { operations, replicaName, keyPrefix } = this.options;
    for (const { name, scheduleName } of jobs) if (scheduleName) this.events.nameJob(name, scheduleName);
    if (!operations || jobs.length === 0) return Promise.resolve();
    const declaredAt = Date.now();
    // A schedule without a zone is read in this process's zone: record which, for readers elsewhere.
    const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const fields = jobs.flatMap(({ name, ...job }) => {
      const timeZone = job.timeZone ?? (job.cron !== null && job.utcOffset === null ? localZone : null);
      const record: JobRecord = { ...job, timeZone, declaredBy: replicaName, declaredAt };
      return [name, JSON.stringify(record)];
    });
    const firstDeclared = jobs.flatMap(({ name }) => [name, String(declaredAt)]);
    // Schedule names in a hash of their own: a replica of an older version, declaring again, keeps them.
    const names = jobs.flatMap(({ name, scheduleName }) => (scheduleName ? [scheduleName, name] : []));
    this.drift?.declared(jobs);
    return Promise.all([
      this.store.declare(jobsKey(keyPrefix), fields),
      this.store.declare(jobsFirstDeclaredKey(keyPrefix), firstDeclared, true),
      names.length > 0 ? this.store.declare(jobNamesKey(keyPrefix), names) : undefined,
    ]).then(() => undefined);
  }

  /** The record of a job's run, for its lock name's history stream. */
  runRecord(lock: LockHandle, outcome: RunRecordOutcome, durationMs: number, error: unknown): RunHistoryWrite {
    const { historyLength, historyRetentionMs, replicaName } = this.options;
    const fields = runRecordFields(new FinishedRun(lock, replicaName, outcome, durationMs, error));
    return new HistoryWrite(runsKeyOf(lock.storedKey), fields, historyLength, historyRetentionMs);
  }

  /** See `LockEngine.fleet`. */
  fleet(): FleetInspector {
    if (!(this.store instanceof RedisStore)) {
      throw new DistributedLockError(
        `The operations tools need a single Redis or Cluster: locks live in ${this.store.label}.`,
      );
    }
    const deadlineMs = Math.max(FLEET_DEADLINE_MIN_MS, FLEET_DEADLINE_FACTOR * this.options.acquireTimeoutMs);
    return (this.inspector ??= withDeadline(this.inspectorOf(this.store), deadlineMs, ['trigger']));
  }

  /** See `LockEngine.overdueJobs`. */
  overdue(options: { graceMs: number }): Promise<OverdueJob[] | undefined> {
    if (!this.options.operations || !(this.store instanceof RedisStore)) return Promise.resolve(undefined);
    return withDeadline(this.inspectorOf(this.store), this.options.acquireTimeoutMs).overdue(options);
  }

  /** See `LockEngine.fleetNotices`. */
  async notices(): Promise<FleetNotices | undefined> {
    if (!this.options.operations || !(this.store instanceof RedisStore)) return undefined;
    const fleet = withDeadline(this.inspectorOf(this.store), this.options.acquireTimeoutMs);
    const [paused, drift] = await Promise.all([fleet.paused(), fleet.drift()]);
    return { paused, drift };
  }

  private inspectorOf(store: RedisStore): FleetInspector {
    const { keyPrefix, historyRetentionMs } = this.options;
    const onPauseChange = (event: LockPauseEvent): void => {
      if (this.events.active) this.events.emit(event);
    };
    return new FleetInspector(store.client, keyPrefix, { historyRetentionMs, onPauseChange });
  }
}

// Built by constructors, not object literals: see `AcquisitionRequest` (locks/lock-request.ts).

/** A run that just ended, as its record states it. */
class FinishedRun implements RunRecord {
  readonly job: string;
  readonly tick: number | undefined;
  readonly startedAt: number;
  readonly error: string | undefined;
  readonly fencingToken: number | undefined;
  readonly trigger: RunTrigger;
  readonly attempt: number;

  constructor(
    lock: LockHandle,
    readonly replica: string,
    readonly outcome: RunRecordOutcome,
    readonly durationMs: number,
    error: unknown,
  ) {
    this.job = lock.job!;
    this.tick = lock.tick;
    this.startedAt = Date.now() - durationMs;
    this.error = outcome === 'ok' || error === undefined ? undefined : describeError(error);
    this.fencingToken = lock.fencingToken;
    this.trigger = lock.trigger;
    this.attempt = lock.attempt;
  }
}

class HistoryWrite implements RunHistoryWrite {
  constructor(
    readonly streamKey: string,
    readonly fields: readonly string[],
    readonly maxLength: number,
    readonly retentionMs: number,
  ) {}
}
