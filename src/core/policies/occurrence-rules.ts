import type { CronSchedule } from '../jobs/cron-schedule';
import type { CatchUpPolicy, RetryPolicy } from './job-policies';
import type { LedgerEntry, LedgerRead } from './ledger';

/** An occurrence is not missed before this long after it (a late timer is still on its way), nor before half a period. */
const MISSED_AFTER_MS = 5_000;
/** At most this many occurrences are weighed per look. */
const CANDIDATES_LIMIT = 20_000;

/** What a catch-up look runs, oldest first, and how many missed occurrences it leaves (`runs: 'all'` over `max`). */
export interface CatchUpPlan {
  readonly run: readonly number[];
  readonly dropped: number;
  /** The newest occurrence left out: later looks leave it and those before it alone. */
  readonly droppedThrough: number | undefined;
}

/**
 * The occurrences of `schedule` a catch-up look runs at `now` (ms since the epoch): those within
 * the window, after the job's current definition was first seen (`ledger.since`) and at least a
 * moment old, that the ledger does not know (no replica started them, none skipped them for a
 * pause or an overlap) and that are not the latest the schedule served. `'latest'`: the most
 * recent of them, unless a later occurrence ran; `'all'`: the newest `max` of them, after
 * `droppedThrough` (what an earlier look left out).
 */
export function missedOccurrences(
  ledger: LedgerRead,
  catchUp: Required<CatchUpPolicy>,
  schedule: CronSchedule,
  now: number,
  droppedThrough = -Infinity,
): CatchUpPlan {
  const latest = schedule.occurrenceAt(now);
  const graceMs = Math.min(MISSED_AFTER_MS, schedule.periodMs / 2 || MISSED_AFTER_MS);
  const from = Math.max(now - catchUp.windowMs, ledger.since + 1, droppedThrough + 1);
  const to = now - graceMs;
  if (latest === undefined || from > to) return { run: [], dropped: 0, droppedThrough: undefined };
  const known = new Set(ledger.entries.map((entry) => entry.tick));
  const isMissed = (tick: number): boolean => !known.has(tick) && tick !== ledger.served;
  if (catchUp.runs === 'latest') {
    const last = latestNamed(schedule, from, to);
    const laterRan = ledger.entries.some(
      (entry) => last !== undefined && entry.tick > last && entry.status !== 'paused',
    );
    const servedLater = ledger.served !== undefined && last !== undefined && ledger.served > last;
    const run = last !== undefined && last >= from && isMissed(last) && !laterRan && !servedLater ? [last] : [];
    return { run, dropped: 0, droppedThrough: undefined };
  }
  // Occurrences already caught up count as missed when choosing the newest `max`: replicas looking
  // at once then choose the same ones, whichever of them each has claimed so far.
  const caughtUp = new Set(ledger.entries.filter((entry) => entry.trigger === 'catch-up').map((entry) => entry.tick));
  const missed = schedule
    .namedOccurrencesBetween(from, to, CANDIDATES_LIMIT)
    .filter((tick) => isMissed(tick) || caughtUp.has(tick));
  const cut = Math.max(0, missed.length - catchUp.max);
  const dropped = missed.slice(0, cut).filter(isMissed);
  return {
    run: missed.slice(cut).filter(isMissed),
    dropped: dropped.length,
    droppedThrough: dropped.length > 0 ? dropped[dropped.length - 1] : undefined,
  };
}

/**
 * The latest occurrence at or before `to`, as the daylight-saving policy names it. Without one,
 * straight from the schedule; with one, from the occurrences of the last few hours (or periods),
 * enough to see past a change of the clocks.
 */
function latestNamed(schedule: CronSchedule, from: number, to: number): number | undefined {
  const last = schedule.occurrenceAt(to);
  if (last === undefined || schedule.dstName(last) === last) return last;
  const since = Math.max(from, to - Math.max(4 * 3_600_000, 2 * schedule.periodMs));
  return schedule.namedOccurrencesBetween(since, to, CANDIDATES_LIMIT).at(-1);
}

/** An attempt retry owes: attempt `attempt` of the occurrence `tick`. */
export interface RetryDue {
  readonly tick: number;
  readonly attempt: number;
}

/**
 * The attempts a look owes to failed runs: an occurrence whose latest attempt ended in `error`,
 * with attempts left, whose backoff has passed (by Redis's clock, `ledger.now`), and whose next
 * occurrence after the failure is not due yet at `now`. The replica that saw the failure retries
 * it itself after its backoff; a look finds what a replica that is gone could not.
 */
export function retryDue(
  ledger: LedgerRead,
  retry: Required<RetryPolicy>,
  schedule: CronSchedule,
  now: number,
): RetryDue[] {
  const due: RetryDue[] = [];
  for (const entry of ledger.entries) {
    if (entry.status !== 'error' || entry.attempt >= retry.attempts) continue;
    const backoffMs = Math.min(retry.maxBackoffMs, retry.backoffMs * 2 ** (entry.attempt - 1));
    const deadline = schedule.occurrenceAfter(entry.at) ?? Infinity;
    if (ledger.now >= entry.at + backoffMs && now < deadline)
      due.push({ tick: entry.tick, attempt: entry.attempt + 1 });
  }
  return due;
}

/**
 * The runs a recovery look may take over: attempts the ledger says are running on another
 * instance, started at least a lock TTL ago (by Redis's clock: a run that is alive extends its
 * lock, and its claim would find it held), still within their occurrence's period, or within
 * `windowMs` when catch-up is on; not a recovery run itself (a run is recovered once). The caller then keeps those whose instance's heartbeat expired.
 */
export function recoveryCandidates(
  ledger: LedgerRead,
  self: string,
  ttlMs: number,
  schedule: CronSchedule,
  windowMs: number | undefined,
  now: number,
): LedgerEntry[] {
  return ledger.entries.filter((entry) => {
    // Once: a recovery run that crashes too is not recovered again.
    if (entry.status !== 'running' || entry.trigger === 'recovery') return false;
    if (entry.holder === undefined || entry.holder === self) return false;
    if (ledger.now < entry.at + ttlMs) return false;
    const deadline =
      windowMs === undefined ? (schedule.occurrenceAfter(entry.tick) ?? Infinity) : entry.tick + windowMs;
    return now < deadline;
  });
}
