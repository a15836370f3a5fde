import type { Cluster, Redis } from 'ioredis';
import { EARLY_FIRING_TOLERANCE_MS } from '../jobs/cron-schedule';
import { InvalidLockArgumentError, NO_SINGLE_LOCK_TO_PAUSE } from '../errors';
import { DEFAULT_LOCK_OPTIONS } from '../options/lock-options';
import { expectations } from '../validation';
import type { LockPauseEvent } from '../events/lock-events';
import type { HeldLock, JobStatus, MissedReport, OverdueJob, PausedJob } from './fleet-reports';
import { jobFailuresField, jobNamesKey, jobsFirstDeclaredKey, jobsKey, lockKeys } from '../keys';
import { hashEntries } from './redis-scan';
import { type JobRecord, MAX_PAUSE_NOTE_LENGTH, parsePause, type PauseRecord } from './fleet-records';
import {
  checkedWindow,
  MAX_CHECKED_OCCURRENCES,
  occurrencesToCheck,
  scheduleOf,
  sortOccurrences,
} from './job-occurrences';
import { liveListeners, type TriggeredRun, triggerJob, type TriggerOptions } from './fleet-trigger';
import type { TriggerListener } from './manual-triggers';
import { JobRecordReader } from './job-record-reader';
import { heldLocks } from './held-locks';
import { type JobDrift, readDrift } from './definition-drift';
import { historyLostUntil, newestRuns, type RecordedRun, runsWrittenSince } from './run-history';

export type { HeldLock, JobStatus, MissedReport, OverdueJob, PausedJob, RecordedRun } from './fleet-reports';
export { MAX_CHECKED_OCCURRENCES } from './job-occurrences';

/**
 * How long before its occurrence a run record may be written, by the Redis clock: a replica's
 * timer may fire a little early, and its clock run ahead of Redis's.
 */
const RECORD_LEAD_MS = 5 * 60_000;

/**
 * Reads and steers what the fleet keeps in Redis (`fleet-records.ts`): the jobs replicas declared,
 * the locks held, run history, missed occurrences, pauses. Every read is bounded: keys are found
 * with SCAN (on every master of a Cluster), streams and hashes are read by pages. The client is
 * never closed.
 *
 * @example
 * const fleet = new FleetInspector(new Redis(process.env.REDIS_URL!), 'app:');
 * for (const job of await fleet.overdue({ graceMs: 60_000 })) console.warn(`${job.name} is ${job.lateMs} ms late`);
 */
export class FleetInspector {
  private readonly historyRetentionMs: number;
  private readonly records: JobRecordReader;
  private readonly onPauseChange: ((event: LockPauseEvent) => void) | undefined;

  /**
   * @param keyPrefix The engine's `keyPrefix`.
   * @param options.historyRetentionMs The replicas' `historyRetentionMs`: how long a run history
   *   outlives its last record, so `missed` knows which occurrences an expired history may hide.
   * @param options.onPauseChange Told of each pause and resume made through this inspector.
   */
  constructor(
    private readonly client: Redis | Cluster,
    readonly keyPrefix = '',
    options: { historyRetentionMs?: number; onPauseChange?: (event: LockPauseEvent) => void } = {},
  ) {
    const retention = options.historyRetentionMs ?? DEFAULT_LOCK_OPTIONS.historyRetentionMs;
    if (!expectations.positiveInteger.test(retention)) {
      throw new InvalidLockArgumentError('historyRetentionMs', retention, 'a positive integer number of milliseconds');
    }
    this.historyRetentionMs = retention;
    this.records = new JobRecordReader(client, keyPrefix);
    this.onPauseChange = options.onPauseChange;
  }

  /** Every job declared by a replica, with its pause and latest run, sorted by name. */
  async jobs(): Promise<JobStatus[]> {
    const records = await this.records.all();
    const names = [...records.keys()].sort();
    return Promise.all(
      names.map(async (name): Promise<JobStatus> => {
        const record = records.get(name)!;
        if (record.key === null) return { name, record, pause: undefined, lastRun: undefined };
        const keys = lockKeys(this.keyPrefix, record.key);
        const [pause, [lastRun]] = await Promise.all([
          this.client.hget(keys.paused, name).then(parsePause),
          newestRuns(this.client, keys.runs, name, 1),
        ]);
        return { name, record, pause, lastRun };
      }),
    );
  }

  /** The jobs paused fleet-wide, with their pause records, sorted by name. */
  paused(): Promise<PausedJob[]> {
    return this.records.paused();
  }

  /** Every lock held now, sorted by name. */
  locks(): Promise<HeldLock[]> {
    return heldLocks(this.client, this.keyPrefix);
  }

  /** The jobs whose live replicas run different definitions (schedule drift), and which one owns each. */
  drift(): Promise<JobDrift[]> {
    return readDrift(this.client, this.keyPrefix);
  }

  /**
   * The latest runs of `job`, newest first. A job whose lock name is computed per call needs the
   * name of the call as `key`.
   */
  async runs(job: string, options: { limit?: number; key?: string } = {}): Promise<RecordedRun[]> {
    job = await this.records.storedName(job);
    const limit = options.limit ?? 20;
    if (!expectations.count.test(limit) || limit === 0) {
      throw new InvalidLockArgumentError('limit', limit, 'a positive integer');
    }
    const key = await this.records.lockNameOf(
      job,
      options.key,
      'name the lock of the calls to read (`key`, or --key).',
    );
    return newestRuns(this.client, lockKeys(this.keyPrefix, key).runs, job, limit);
  }

  /**
   * The occurrences of `@Cron` job `job` from `from` to `to` (both included) that ran nowhere: no
   * run record carries them, they are not the occurrence being served now, and the job's `catchUp`
   * will not run them (those are `toCatchUp`). Occurrences before
   * the job was first declared are not its, and are not counted. Occurrences whose record may have
   * been trimmed from the capped history are reported as `unknown`. Without `from`, the window is
   * what the kept history covers, at most a day and the latest `MAX_CHECKED_OCCURRENCES`
   * occurrences; `to` defaults to now. A job declared without `timeZone` is read in this
   * process's zone: run it in the replicas' zone.
   */
  async missed(job: string, window: { from?: number | Date; to?: number | Date; key?: string }): Promise<MissedReport> {
    job = await this.records.storedName(job);
    const { asked, to } = checkedWindow(window);
    const record = await this.records.one(job);
    const schedule = scheduleOf(job, record);
    const key = await this.records.lockNameOf(
      job,
      window.key,
      'name the lock of the calls to check (`key`, or --key).',
      record,
    );
    const keys = lockKeys(this.keyPrefix, key);
    const [lostUntil, firstDeclared] = await Promise.all([
      historyLostUntil(this.client, keys.runs, this.historyRetentionMs, Date.now()),
      this.client.hget(jobsFirstDeclaredKey(this.keyPrefix), job).then((at) => (at === null ? -Infinity : Number(at))),
    ]);
    const { from, occurrences } = occurrencesToCheck(schedule, { asked, to, lostUntil, firstDeclared });
    if (occurrences.length > MAX_CHECKED_OCCURRENCES) {
      throw new InvalidLockArgumentError(
        'from',
        window.from,
        `a time at most ${MAX_CHECKED_OCCURRENCES} occurrences of "${record.cron}" before ${new Date(to).toISOString()} (narrow the window)`,
      );
    }
    const [runs, servedTick] = await Promise.all([
      occurrences.length === 0 ? [] : runsWrittenSince(this.client, keys.runs, job, occurrences[0] - RECORD_LEAD_MS),
      this.records.servedTick(keys.state, job),
    ]);
    const sorted = sortOccurrences(occurrences, runs, servedTick, lostUntil, record.policies?.catchUp, Date.now());
    const counts = { occurrences: occurrences.length, historyLostUntil: lostUntil };
    return { job, key, schedule: record.cron!, from, to, ...counts, ...sorted };
  }

  /**
   * `@Cron` jobs whose latest occurrence at least `graceMs` old ran nowhere: not served, no run
   * record. Paused jobs, jobs whose lock name is computed per call, and occurrences from before a
   * job was first declared (a job just deployed, a Redis that lost its data) are left out.
   */
  async overdue(options: { graceMs: number; now?: number }): Promise<OverdueJob[]> {
    const { graceMs, now = Date.now() } = options;
    if (!expectations.count.test(graceMs)) {
      throw new InvalidLockArgumentError('graceMs', graceMs, 'a non-negative integer');
    }
    const [records, firstDeclared] = await Promise.all([this.records.all(), this.records.firstDeclared()]);
    const checks = [...records].map(async ([name, record]): Promise<OverdueJob | undefined> => {
      if (record.cron === null || record.key === null) return undefined;
      const occurrence = scheduleOf(name, record).occurrenceAt(now - graceMs - EARLY_FIRING_TOLERANCE_MS);
      if (occurrence === undefined || occurrence < (firstDeclared.get(name) ?? record.declaredAt)) return undefined;
      const keys = lockKeys(this.keyPrefix, record.key);
      const [served, paused] = await Promise.all([
        this.records.servedTick(keys.state, name),
        this.client.hexists(keys.paused, name),
      ]);
      if (paused || (served !== undefined && served >= occurrence)) return undefined;
      const runs = await runsWrittenSince(this.client, keys.runs, name, occurrence - RECORD_LEAD_MS);
      if (runs.some((run) => run.tick !== undefined && run.tick >= occurrence)) return undefined;
      // Older than what the history still holds (a one-off long past): its record may be gone.
      const lostUntil = await historyLostUntil(this.client, keys.runs, this.historyRetentionMs, now);
      if (occurrence <= lostUntil + EARLY_FIRING_TOLERANCE_MS) return undefined;
      return { name, occurrence, lateMs: now - occurrence };
    });
    const overdue = (await Promise.all(checks)).filter((job): job is OverdueJob => job !== undefined);
    return overdue.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * Deletes the lock `name` whoever holds it (its state and history stay), so the next tick can
   * take it. The holder, if still running, is not told: use it for a holder known to be gone.
   * Resolves whether a lock was held.
   */
  async release(name: string): Promise<boolean> {
    if (!expectations.nonEmptyString.test(name)) throw new InvalidLockArgumentError('name', name, 'a non-empty string');
    return (await this.client.del(lockKeys(this.keyPrefix, name).lock)) === 1;
  }

  /**
   * Pauses `job` on every replica: each acquisition for it is refused (skip reason `paused`) until
   * `resume`. A run in progress goes on. `note` says why, for `status` and the other operators.
   * Resolves false when it was already paused (the record is then replaced).
   */
  async pause(job: string, by: string, note?: string): Promise<boolean> {
    job = await this.records.storedName(job);
    if (typeof by !== 'string') throw new InvalidLockArgumentError('by', by, 'a string');
    if (note !== undefined && (typeof note !== 'string' || note.length > MAX_PAUSE_NOTE_LENGTH)) {
      throw new InvalidLockArgumentError('note', note, `a string of at most ${MAX_PAUSE_NOTE_LENGTH} characters`);
    }
    const key = await this.records.lockNameOf(job, undefined, NO_SINGLE_LOCK_TO_PAUSE);
    const pause: PauseRecord = { by, at: Date.now(), ...(note ? { note } : undefined) };
    const paused = (await this.client.hset(lockKeys(this.keyPrefix, key).paused, job, JSON.stringify(pause))) === 1;
    this.onPauseChange?.({ type: 'paused', job, key, pause });
    return paused;
  }

  /**
   * Resumes a paused job, and starts its count of failed occurrences (`pauseAfterFailures`) anew.
   * Resolves false when it was not paused.
   */
  async resume(job: string): Promise<boolean> {
    job = await this.records.storedName(job);
    const key = await this.records.lockNameOf(job, undefined, NO_SINGLE_LOCK_TO_PAUSE);
    const keys = lockKeys(this.keyPrefix, key);
    const [resumed] = await Promise.all([
      this.client.hdel(keys.paused, job),
      this.client.hdel(keys.state, jobFailuresField(job)),
    ]);
    if (resumed === 1) this.onPauseChange?.({ type: 'resumed', job, key, pause: undefined });
    return resumed === 1;
  }

  /**
   * Runs `job` now (serving no occurrence), or a missed `occurrence` of it, on one live replica with
   * `manualTriggers`, resolving once it started there; a `TriggerRefusedError` says why none did.
   */
  async trigger(job: string, options: TriggerOptions = {}): Promise<TriggeredRun> {
    const missed = (name: string, window: { from: number; to: number }) => this.missed(name, window);
    const fleet = { client: this.client, keyPrefix: this.keyPrefix, reader: this.records, missed };
    return triggerJob(fleet, await this.records.storedName(job), options);
  }

  /** The replicas taking manual triggers now (`manualTriggers`): name, jobs, clock offset from Redis. */
  replicas(): Promise<TriggerListener[]> {
    return liveListeners(this.client, this.keyPrefix);
  }

  /**
   * Forgets a job the fleet no longer runs (renamed or removed): its declaration goes, so `status`,
   * `missed` and the health check stop reporting it. A replica that still runs it declares it again
   * when it starts. Its history and state stay until they expire. Resolves false when not declared.
   */
  async forget(job: string): Promise<boolean> {
    job = await this.records.storedName(job);
    if (!expectations.nonEmptyString.test(job)) throw new InvalidLockArgumentError('job', job, 'a non-empty string');
    const names = (await hashEntries(this.client, jobNamesKey(this.keyPrefix))).filter(([, stored]) => stored === job);
    const [removed] = await Promise.all([
      this.client.hdel(jobsKey(this.keyPrefix), job),
      this.client.hdel(jobsFirstDeclaredKey(this.keyPrefix), job),
      ...names.map(([name]) => this.client.hdel(jobNamesKey(this.keyPrefix), name)),
    ]);
    return removed === 1;
  }

  /** The declared record of `job`; an `UnknownJobError` listing the known jobs if none. */
  async jobRecord(job: string): Promise<JobRecord> {
    return this.records.one(await this.records.storedName(job));
  }
}
