import type { HeldLock, JobStatus, MissedReport, RecordedRun } from '../core/fleet/fleet-inspector';
import type { JobDrift } from '../core/fleet/definition-drift';
import type { JobRecord, PauseRecord } from '../core/fleet/fleet-records';
import { isOneOff } from '../core/fleet/job-occurrences';

/** Occurrences listed per kind by `missed` before "and N more". */
const LISTED_OCCURRENCES = 50;
const NONE = '-';

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `status`: the jobs, then the locks held. */
export function statusText(
  jobs: readonly JobStatus[],
  locks: readonly HeldLock[],
  prefix: string,
  now: number,
): string {
  const where = prefix === '' ? 'no key prefix' : `key prefix ${JSON.stringify(prefix)}`;
  const jobPart =
    jobs.length === 0
      ? `No job declared (${where}).`
      : `Jobs (${where})\n` +
        table(
          ['JOB', 'LOCK', 'SCHEDULE', 'PAUSED', 'LAST RUN', 'REPLICA', 'OUTCOME'],
          jobs.map(({ name, record, pause, lastRun }) => [
            record.scheduleName ? `${record.scheduleName} (${name})` : name,
            record.key ?? '(per call)',
            scheduleText(record),
            pause ? pauseText(pause, now) : 'no',
            lastRun ? ago(lastRun.startedAt, now) : NONE,
            lastRun?.replica || NONE,
            lastRun?.outcome ?? NONE,
          ]),
        );
  const lockPart =
    locks.length === 0
      ? 'No lock held.'
      : 'Locks held\n' +
        table(
          ['LOCK', 'HOLDER', 'SINCE', 'TTL LEFT', 'FENCING TOKEN'],
          locks.map((lock) => [
            lock.name,
            lock.replica ?? '(unnamed)',
            lock.since === undefined ? NONE : ago(lock.since, now),
            lock.ttlLeftMs === undefined ? 'none' : duration(lock.ttlLeftMs),
            lock.fencingToken === undefined ? NONE : String(lock.fencingToken),
          ]),
        );
  return `${jobPart}\n\n${lockPart}`;
}

/** `history`: the runs, newest first. */
export function historyText(job: string, key: string, runs: readonly RecordedRun[]): string {
  if (runs.length === 0) return `No recorded run of ${job} (lock ${JSON.stringify(key)}).`;
  return (
    `Runs of ${job} (lock ${JSON.stringify(key)}), newest first\n` +
    table(
      ['STARTED', 'OCCURRENCE', 'TRIGGER', 'REPLICA', 'OUTCOME', 'DURATION', 'FENCING TOKEN', 'ERROR'],
      runs.map((run) => [
        time(run.startedAt),
        run.tick === undefined ? NONE : time(run.tick),
        run.attempt === 1 ? run.trigger : `${run.trigger} (attempt ${run.attempt})`,
        run.replica || NONE,
        run.outcome,
        duration(run.durationMs),
        run.fencingToken === undefined ? NONE : String(run.fencingToken),
        run.error === undefined ? NONE : oneLine(run.error),
      ]),
    )
  );
}

/** `missed`: the counts, then the occurrences missed and those the history cannot tell. */
export function missedText(report: MissedReport, record: JobRecord, now: number): string {
  const { job, from, to, occurrences, ran, inProgress, missed, toCatchUp, unknown } = report;
  const catchingUp = record.policies?.catchUp ? `, ${toCatchUp.length} to be caught up` : '';
  const lines = [
    `${job}: ${scheduleText(record)}`,
    `From ${time(from)} to ${time(to)}: ${count(occurrences, 'occurrence')}, ${ran} ran, ` +
      `${inProgress === undefined ? 0 : 1} in progress, ${missed.length} missed${catchingUp}, ${unknown.length} unknown.`,
  ];
  if (record.timeZone === null && record.utcOffset === null && !isOneOff(record.cron ?? '')) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    lines.push(
      `The job declares no time zone: read in this machine's (${zone}); set TZ to the replicas' if it differs.`,
    );
  }
  if (inProgress !== undefined) lines.push(`In progress: ${time(inProgress)} (served, no run recorded yet).`);
  if (missed.length > 0) lines.push('', 'MISSED (ran on no replica)', ...listed(missed, now));
  if (toCatchUp.length > 0) {
    const { windowMs, runs } = record.policies!.catchUp!;
    lines.push('', `TO BE CAUGHT UP (catchUp: ${runs}, window ${duration(windowMs)})`, ...listed(toCatchUp, now));
  }
  if (unknown.length > 0) {
    lines.push(
      '',
      `UNKNOWN (run records written before ${time(report.historyLostUntil)} may have been trimmed or expired)`,
      ...listed(unknown, now),
    );
  }
  return lines.join('\n');
}

function listed(occurrences: readonly number[], now: number): string[] {
  const shown = occurrences.slice(-LISTED_OCCURRENCES).map((at) => `${time(at)}  ${ago(at, now)}`);
  const more = occurrences.length - shown.length;
  return more > 0 ? [`(${more} earlier ones not shown; --json lists all)`, ...shown] : shown;
}

function scheduleText(record: JobRecord): string {
  if (record.cron === null) return NONE;
  if (record.timeZone !== null) return `${record.cron} (${record.timeZone})`;
  if (record.utcOffset !== null) return `${record.cron} (UTC${record.utcOffset >= 0 ? '+' : ''}${record.utcOffset}m)`;
  return record.cron;
}

/** An ISO time, without milliseconds when they are 0. */
export function time(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** `status`'s closing part: the jobs live replicas run with different definitions; nothing when none. */
export function driftText(drifts: readonly JobDrift[]): string {
  if (drifts.length === 0) return '';
  const lines = drifts.flatMap(({ job, definitions }) =>
    definitions.map(
      (seen, i) =>
        `${job}  ${seen.cron ?? '-'}${seen.timeZone ? ` (${seen.timeZone})` : ''}  on ${seen.replicas.join(', ')}  ` +
        (i === 0 ? 'runs it (the newest definition)' : 'skips it (drift)'),
    ),
  );
  return `\n\nSchedule drift: live replicas run different definitions of ${count(drifts.length, 'job')}\n${lines.join('\n')}`;
}

/** Who paused a job, when, and the note that says why. */
function pauseText({ by, at, note }: PauseRecord, now: number): string {
  return `by ${by || '?'}, ${ago(at, now)}${note ? `: ${oneLine(note)}` : ''}`;
}

function ago(ms: number, now: number): string {
  const elapsed = now - ms;
  return elapsed < 0 ? `in ${duration(-elapsed)}` : `${duration(elapsed)} ago`;
}

/** `850ms`, `12s`, `4m 12s`, `3h 5m`, `2d 4h`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${s}s`;
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s % 60}s`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
}

/** JSON with unset fields as null, so every field is present in the output. */
export function json(value: unknown): string {
  return JSON.stringify(value, (_key, field: unknown) => (field === undefined ? null : field), 2);
}
