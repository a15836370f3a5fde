import type { JobDrift } from '../core/fleet/definition-drift';
import type { FleetInspector, HeldLock, RecordedRun } from '../core/fleet/fleet-inspector';
import type { JobRecord, PauseRecord } from '../core/fleet/fleet-records';
import { scheduleOf } from '../core/fleet/job-occurrences';

/** What the dashboard shows, read in one bounded pass and shared by every viewer. */
export interface DashboardSnapshot {
  readonly generatedAt: number;
  readonly keyPrefix: string;
  /** How far back the timeline goes, in ms. */
  readonly windowMs: number;
  readonly jobs: DashboardJob[];
  readonly locks: HeldLock[];
  readonly replicas: DashboardReplica[];
  /** Jobs whose live replicas run different definitions (a rolling deploy), and which one owns each. */
  readonly drift: JobDrift[];
}

/** One job as the dashboard shows it. */
export interface DashboardJob {
  /** `Class.method`, what its keys are stored under. */
  readonly name: string;
  /** The name its schedule gives it (`@Cron({ name })`), when it has one. */
  readonly scheduleName: string | null;
  /** Its lock name; null when computed per call. */
  readonly key: string | null;
  readonly cron: string | null;
  readonly timeZone: string | null;
  readonly nextOccurrence: number | null;
  readonly pause: PauseRecord | null;
  readonly lastRun: RecordedRun | null;
  /** The latest due occurrence no replica ran, when the job is overdue. */
  readonly overdue: { readonly occurrence: number; readonly lateMs: number } | null;
  /** Its runs within the window, newest first (at most `MAX_RUNS_SHOWN`). */
  readonly runs: RecordedRun[];
  /** Its occurrences within the window that ran nowhere. */
  readonly missed: number[];
}

/** A replica taking triggers now (`manualTriggers`): its name, jobs and clock offset from Redis. */
export interface DashboardReplica {
  readonly replica: string;
  readonly jobs: readonly string[];
  /** How far its clock is ahead of Redis's (negative: behind), in ms; null until measured. */
  readonly clockOffsetMs: number | null;
}

/** The timeline's span. */
export const TIMELINE_MS = 6 * 3_600_000;
/** Runs read per job for the timeline. */
const MAX_RUNS_SHOWN = 200;
/** An occurrence this late and unrun makes its job overdue, as the health check's default says. */
const OVERDUE_GRACE_MS = 60_000;

/** Reads the snapshot: a few commands per job, one SCAN for the locks and one for the replicas. */
export async function readSnapshot(fleet: FleetInspector, now: number): Promise<DashboardSnapshot> {
  const from = now - TIMELINE_MS;
  const [statuses, locks, overdue, replicas, drift] = await Promise.all([
    fleet.jobs(),
    fleet.locks(),
    fleet.overdue({ graceMs: OVERDUE_GRACE_MS, now }),
    fleet.replicas(),
    fleet.drift(),
  ]);
  const jobs = await Promise.all(
    statuses.map(async ({ name, record, pause, lastRun }): Promise<DashboardJob> => {
      const late = overdue.find((job) => job.name === name);
      const [runs, missed] = await Promise.all([
        record.key === null ? [] : fleet.runs(name, { limit: MAX_RUNS_SHOWN }),
        record.key === null || record.cron === null
          ? undefined
          : fleet.missed(name, { from, to: now }).catch(() => undefined),
      ]);
      return {
        name,
        scheduleName: record.scheduleName ?? null,
        key: record.key,
        cron: record.cron,
        timeZone: record.timeZone,
        nextOccurrence: nextOccurrence(name, record, now),
        pause: pause ?? null,
        lastRun: lastRun ?? null,
        overdue: late ? { occurrence: late.occurrence, lateMs: late.lateMs } : null,
        runs: runs.filter((run) => run.startedAt >= from),
        missed: missed?.missed ?? [],
      };
    }),
  );
  const live = replicas.map(({ replica, jobs: names, clockOffsetMs }) => ({
    replica,
    jobs: names,
    clockOffsetMs: clockOffsetMs ?? null,
  }));
  return { generatedAt: now, keyPrefix: fleet.keyPrefix, windowMs: TIMELINE_MS, jobs, locks, replicas: live, drift };
}

function nextOccurrence(name: string, record: JobRecord, now: number): number | null {
  if (record.cron === null) return null;
  try {
    return scheduleOf(name, record).occurrenceAfter(now) ?? null;
  } catch {
    return null; // a schedule this version cannot read: shown without its next occurrence
  }
}
