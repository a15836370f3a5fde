import { CronSchedule, EARLY_FIRING_TOLERANCE_MS } from '../jobs/cron-schedule';
import { InvalidLockArgumentError, UnscheduledJobError } from '../errors';
import type { JobPoliciesRecord, JobRecord, RunRecord } from './fleet-records';

/** At most this many occurrences are checked in one `missed` window. */
export const MAX_CHECKED_OCCURRENCES = 10_000;

/** The longest window `missed` reads when none is given. */
const DEFAULT_WINDOW_MS = 86_400_000;

/** The schedule a job declared, read as its replicas read it (its time zone or UTC offset). */
export function scheduleOf(job: string, record: JobRecord): CronSchedule {
  if (record.cron === null) throw new UnscheduledJobError(job);
  // A one-off `@Cron(date)` is declared as its ISO date.
  if (isOneOff(record.cron)) return new CronSchedule(new Date(record.cron));
  return new CronSchedule(record.cron, {
    ...(record.timeZone !== null && { timeZone: record.timeZone }),
    ...(record.utcOffset !== null && { utcOffset: record.utcOffset }),
  });
}

/** Whether a declared schedule is the ISO date of a one-off `@Cron(date)`. */
export function isOneOff(cron: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T/.test(cron);
}

/**
 * Sorts occurrences by what the records say: ran (a run record carries it), in progress (the
 * job's served tick, not recorded yet), unknown (its record, written at most a timer's early
 * firing before it, may be among those the history lost up to `lostUntil`), to be caught up by
 * the job's `catchUp` (see `splitCatchUp`), or missed.
 */
export function sortOccurrences(
  occurrences: readonly number[],
  runs: readonly RunRecord[],
  servedTick: number | undefined,
  lostUntil: number,
  catchUp?: JobPoliciesRecord['catchUp'],
  now = Date.now(),
): { ran: number; inProgress: number | undefined; missed: number[]; toCatchUp: number[]; unknown: number[] } {
  const recorded = new Set(runs.map((run) => run.tick));
  const missed: number[] = [];
  const unknown: number[] = [];
  let ran = 0;
  let inProgress: number | undefined;
  for (const occurrence of occurrences) {
    if (recorded.has(occurrence)) ran++;
    else if (occurrence === servedTick) inProgress = occurrence;
    else if (occurrence <= lostUntil + EARLY_FIRING_TOLERANCE_MS) unknown.push(occurrence);
    else missed.push(occurrence);
  }
  const latestRan = Math.max(servedTick ?? -Infinity, ...runs.map((run) => run.tick ?? -Infinity));
  return { ran, inProgress, unknown, ...splitCatchUp(missed, latestRan, catchUp, now) };
}

/**
 * Splits the occurrences no replica ran into those the job's `catchUp` will still run (within
 * its window before `now`: `'latest'` the most recent, when no later occurrence ran; `'all'` the
 * newest `max`) and those that stay missed.
 */
export function splitCatchUp(
  missed: readonly number[],
  latestRan: number,
  catchUp: JobPoliciesRecord['catchUp'],
  now: number,
): { missed: number[]; toCatchUp: number[] } {
  if (!catchUp) return { missed: [...missed], toCatchUp: [] };
  const inWindow = missed.filter((at) => at >= now - catchUp.windowMs);
  const toCatchUp =
    catchUp.runs === 'all' ? inWindow.slice(-catchUp.max) : inWindow.slice(-1).filter((at) => at > latestRan);
  return { missed: missed.filter((at) => !toCatchUp.includes(at)), toCatchUp };
}

/**
 * The occurrences `missed` checks, from the window's start to `to`, none before the job was first
 * declared (they are not its). A window `asked` for may hold at most `MAX_CHECKED_OCCURRENCES`
 * (one more tells the caller it holds too many); without one, it is what the kept history covers
 * (since `lostUntil`), at most a day, and its latest `MAX_CHECKED_OCCURRENCES` occurrences.
 */
export function occurrencesToCheck(
  schedule: CronSchedule,
  window: { asked: number | undefined; to: number; lostUntil: number; firstDeclared: number },
): { from: number; occurrences: number[] } {
  const { asked, to, lostUntil, firstDeclared } = window;
  if (asked !== undefined) {
    const from = Math.max(asked, firstDeclared);
    return { from, occurrences: schedule.occurrencesBetween(from, to, MAX_CHECKED_OCCURRENCES + 1) };
  }
  // The start moves halfway to the end until the window's occurrences fit.
  for (
    let from = Math.max(to - DEFAULT_WINDOW_MS, lostUntil, firstDeclared);
    ;
    from = to - Math.floor((to - from) / 2)
  ) {
    const occurrences = schedule.occurrencesBetween(from, to, MAX_CHECKED_OCCURRENCES + 1);
    if (occurrences.length <= MAX_CHECKED_OCCURRENCES) return { from, occurrences };
  }
}

/** A `missed` window's bounds in ms, checked: `to` defaults to now, `from` to none (see `occurrencesToCheck`). */
export function checkedWindow(window: { from?: number | Date; to?: number | Date }): {
  asked: number | undefined;
  to: number;
} {
  const to = window.to === undefined ? Date.now() : toMs(window.to, 'to');
  const asked = window.from === undefined ? undefined : toMs(window.from, 'from');
  if (asked !== undefined && to < asked) {
    throw new InvalidLockArgumentError('to', window.to, `a time at or after from (${new Date(asked).toISOString()})`);
  }
  return { asked, to };
}

function toMs(time: number | Date, argument: string): number {
  const ms = time instanceof Date ? time.getTime() : time;
  if (!Number.isFinite(ms))
    throw new InvalidLockArgumentError(argument, time, 'a Date or a time in ms since the epoch');
  return ms;
}
