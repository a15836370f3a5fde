import type { EngineClock } from '../clock';
import {
  type AcquireOptions,
  type AcquireSettings,
  assertKey,
  assertTtl,
  checkAcquireOptions,
} from '../locks/acquire-options';
import { jobTickField, TICK_FIELD } from '../keys';
import { checkJobPolicies, hasPolicies, type JobPolicies, type ResolvedJobPolicies } from '../policies/job-policies';
import type { RunTrigger } from '../policies/ledger';
import { InvalidLockArgumentError } from '../errors';
import { expectations } from '../validation';
import type { CronSchedule } from './cron-schedule';

/** The scheduled occurrence an acquisition serves, and where its job keeps the latest one served. */
export interface Occurrence {
  /** The guarded job's name (`Class.method`), for events and records; undefined for plain locks. */
  readonly job: string | undefined;
  /**
   * A job with a fixed lock name, which operators see and steer (with `operations` on): its pause
   * flag is read, its runs are recorded. A lock name computed per call is neither: it cannot be
   * paused by name, and a history per name would grow with the names.
   */
  readonly tracked: boolean;
  readonly tick: number | undefined;
  /** The state hash field of the job's latest tick. */
  readonly tickField: string;
  /** The schedule's period (0 when unknown): the state must outlive it. */
  readonly periodMs: number;
  /** What started the run: the schedule, or a policy. */
  readonly trigger: RunTrigger;
  /** The run's attempt at this occurrence, from 1. */
  readonly attempt: number;
  /** The job has a policy: the acquisition claims (occurrence, attempt) in the job's ledger. */
  readonly ledger: boolean;
  /**
   * A recovery's precondition: the ledger value of the crashed attempt it replaces; 'buffered' for
   * the run of an occurrence that waited behind another (`overlap: 'buffer-one'`); '' otherwise.
   */
  readonly replaces: string;
  /** `overlap: 'buffer-one'`: found held, the occurrence waits for the lock instead of being skipped. */
  readonly bufferOne: boolean;
  /** A manual run forced past the job's pause flag. */
  readonly ignoresPause?: boolean;
}

/** Plain acquisitions: no job, no scheduled occurrence. */
export const NO_OCCURRENCE: Occurrence = {
  job: undefined,
  tracked: false,
  tick: undefined,
  tickField: TICK_FIELD,
  periodMs: 0,
  trigger: 'schedule',
  attempt: 1,
  ledger: false,
  replaces: '',
  bufferOne: false,
};

/** What a plain lock (`acquire`, `withLock`) serves: no job, and the occurrence `tick` names, if any. */
export function plainOccurrence(tick: number | undefined): Occurrence {
  if (tick === undefined) return NO_OCCURRENCE;
  return { ...NO_OCCURRENCE, tick };
}

/** What a guarded job is: see `JobDefinition`. */
export interface JobDefinitionOptions {
  /** The job's name in logs, events, records and the operations tools, e.g. `ReportJobs.nightly`. */
  readonly name: string;
  /** The TTL of each run's lock, in ms; extended while the run goes on (unless `autoExtend: false`). */
  readonly ttlMs: number;
  /**
   * The lock name every run takes, when fixed. Leave it out for a name computed per call (passed
   * to `runDefinedJob`): such runs cannot be paused by name, and are not recorded.
   */
  readonly key?: string;
  /** The options of each run's acquisition (`minHoldMs`, `autoExtend`, `fencing`, `lockContext`, `tick`). */
  readonly options?: AcquireOptions;
  /**
   * The job's schedule, read on its first run (a `@Cron` decorator may be applied after the job is
   * defined); null for a job without one. Each run then serves the latest occurrence at or before
   * the wall clock. Without it, a run serves `options.tick`, if given.
   */
  readonly schedule?: () => CronSchedule | null;
  /** How an error names a computed lock name that is not valid. @default 'key' */
  readonly computedKeyLabel?: string;
  /**
   * What the job does about occurrences that did not run or did not succeed (`catchUp`, `retry`):
   * for a `@Cron` job with a fixed `key`, checked at boot. @default none
   */
  readonly policies?: JobPolicies;
}

/**
 * A guarded job, described once: its name, TTL and options checked when it is defined, its schedule
 * read on its first run. `runDefinedJob` runs it on one replica per occurrence; `@DistributedLock`
 * defines one per decorated method.
 *
 * @example
 * const nightly = new JobDefinition({ name: 'reports.nightly', key: 'reports', ttlMs: 60_000 });
 * await locks.runDefinedJob(nightly, () => buildReport());
 */
export class JobDefinition {
  readonly name: string;
  readonly ttlMs: number;
  readonly key: string | undefined;
  /** @internal */ readonly settings: AcquireSettings;
  /** @internal */ readonly policies: ResolvedJobPolicies;
  private readonly tickField: string;
  private readonly computedKeyLabel: string;
  /** What a run serves without a schedule, built once: the hot path allocates nothing for it. */
  private readonly unscheduled: Occurrence;
  private readonly readSchedule: (() => CronSchedule | null) | undefined;
  private schedule: CronSchedule | null | undefined;

  constructor(definition: JobDefinitionOptions) {
    const { name, ttlMs, key, options = {}, schedule, computedKeyLabel = 'key', policies = {} } = definition;
    if (key !== undefined) assertKey(key);
    assertTtl(ttlMs);
    if (!expectations.nonEmptyString.test(name)) throw new InvalidLockArgumentError('name', name, 'a non-empty string');
    this.name = name;
    this.ttlMs = ttlMs;
    this.key = key;
    this.settings = checkAcquireOptions(options, true);
    this.policies = checkJobPolicies(policies);
    this.tickField = jobTickField(name);
    this.computedKeyLabel = computedKeyLabel;
    this.readSchedule = schedule;
    this.unscheduled = {
      job: name,
      tracked: key !== undefined,
      tick: this.settings.tick,
      tickField: this.tickField,
      periodMs: 0,
      trigger: 'schedule',
      attempt: 1,
      ledger: hasPolicies(this.policies),
      replaces: '',
      bufferOne: this.policies.overlap === 'buffer-one',
    };
  }

  /** @internal The lock name of a run: the fixed one, or the one computed for it, checked. */
  lockName(computed: string | undefined): string {
    if (this.key !== undefined) {
      if (computed === undefined || computed === this.key) return this.key;
      throw new InvalidLockArgumentError(
        'lockName',
        computed,
        `omitted: job ${this.name} has the fixed key "${this.key}"`,
      );
    }
    if (!expectations.lockName.test(computed)) {
      throw new InvalidLockArgumentError(this.computedKeyLabel, computed, expectations.lockName.expected);
    }
    return computed;
  }

  /**
   * @internal The occurrence a run starting now serves: named from the schedule and the wall
   * clock, so a late callback (a busy event loop) still names the occurrence it serves, and fake
   * timers drive it in tests. A job without a schedule reads no clock. Undefined when the job's
   * daylight-saving policy skips the occurrence (`springForward: 'skip'`).
   */
  occurrenceNow(clock: EngineClock): Occurrence | undefined {
    const schedule = this.cronSchedule();
    if (schedule === null) return this.unscheduled;
    const tick = schedule.occurrenceAt(clock.now());
    if (tick === undefined || !this.policies.dst) return this.occurrence(tick, 'schedule', 1);
    // Under a daylight-saving policy: a second pass is named after its first, a skipped time is not run.
    const named = schedule.dstName(tick);
    return named === undefined ? undefined : this.occurrence(named, 'schedule', 1);
  }

  /** @internal An occurrence a policy runs: `tick`, started by `trigger`, as attempt `attempt`. */
  occurrence(tick: number | undefined, trigger: RunTrigger, attempt: number, replaces = ''): Occurrence {
    return {
      job: this.name,
      tracked: this.unscheduled.tracked,
      tick,
      tickField: this.tickField,
      periodMs: this.schedule?.periodMs ?? 0,
      trigger,
      attempt,
      ledger: this.unscheduled.ledger && tick !== undefined,
      replaces,
      bufferOne: this.unscheduled.bufferOne,
    };
  }

  /**
   * @internal What a manual trigger runs: `tick`, a missed occurrence (claimed as the schedule's
   * would be), or no occurrence at all (a run now, which serves none); `force` skips the pause flag.
   */
  triggeredOccurrence(tick: number | undefined, force: boolean): Occurrence {
    const occurrence = this.occurrence(tick, 'manual', 1);
    return force ? { ...occurrence, ignoresPause: true } : occurrence;
  }

  /** @internal The job's schedule, read on first use; null for a job without one. */
  cronSchedule(): CronSchedule | null {
    if (this.schedule === undefined) {
      const read = this.readSchedule?.() ?? null;
      const { dst } = this.policies;
      this.schedule = read && dst ? read.withDaylightSaving(dst) : read;
    }
    return this.schedule;
  }
}
