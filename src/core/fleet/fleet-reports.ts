import type { JobRecord, PauseRecord } from './fleet-records';
import type { RecordedRun } from './run-history';

export type { RecordedRun } from './run-history';

/** A guarded job as the fleet declared it, with its pause and its latest recorded run. */
export interface JobStatus {
  readonly name: string;
  readonly record: JobRecord;
  /** Set while the job is paused fleet-wide. */
  readonly pause: PauseRecord | undefined;
  /** Undefined when none is retained, or the lock name is computed per call. */
  readonly lastRun: RecordedRun | undefined;
}

/** A job paused fleet-wide, with who paused it, when and why. */
export interface PausedJob {
  readonly name: string;
  readonly pause: PauseRecord;
}

/** A lock held right now. */
export interface HeldLock {
  /** The lock name (`key` of `@DistributedLock`). */
  readonly name: string;
  /** The Redis key, `<prefix>lock:{<name>}`. */
  readonly key: string;
  /** The holder's replica and when it took the lock; undefined for a token that does not say. */
  readonly replica: string | undefined;
  readonly since: number | undefined;
  /** Undefined for a key without expiry (not written by this library). */
  readonly ttlLeftMs: number | undefined;
  /** The latest fencing token issued for the name: the holder's, when it took the lock fenced. */
  readonly fencingToken: number | undefined;
}

/** The occurrences of a `@Cron` job in a window, sorted by what the fleet's records say of them. */
export interface MissedReport {
  readonly job: string;
  readonly key: string;
  readonly schedule: string;
  readonly from: number;
  readonly to: number;
  /** How many occurrences the window holds. */
  readonly occurrences: number;
  /** How many of them have a run record. */
  readonly ran: number;
  /** An occurrence served but not recorded yet: still running, or its replica died running it. */
  readonly inProgress: number | undefined;
  /** Occurrences no replica ran, and none will: not those the job's `catchUp` will still run. */
  readonly missed: number[];
  /** Occurrences no replica ran yet that the job's `catchUp` policy will run (within its window). */
  readonly toCatchUp: number[];
  /** Occurrences whose run record may have been trimmed from the capped history: not known. */
  readonly unknown: number[];
  /** Run records written up to this time (ms) may be gone: trimmed by the cap, or expired. */
  readonly historyLostUntil: number;
}

/** A `@Cron` job whose latest due occurrence ran nowhere. */
export interface OverdueJob {
  readonly name: string;
  readonly occurrence: number;
  readonly lateMs: number;
}
