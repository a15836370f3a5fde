import type { RunTrigger } from '../policies/ledger';

/**
 * What the fleet keeps beside its locks for the operators (declared jobs, run records, pauses),
 * and how each is written and read back; where each lives is `keys.ts`.
 */

/** A guarded job as a replica declares it at startup (what `status`, `missed` and `pause` look up). */
export interface JobRecord {
  /** The lock name, or null when it is computed per call (a key function). */
  readonly key: string | null;
  readonly ttlMs: number;
  /** The `@Cron` expression, or an ISO date for a one-off `@Cron(date)`; null for other jobs. */
  readonly cron: string | null;
  /** The zone the schedule is read in: the code's, else the declaring replica's own; null with `utcOffset`. */
  readonly timeZone: string | null;
  readonly utcOffset: number | null;
  /** The job's policies (`catchUp`, `retry`, `recoverCrashed`), when it has any. */
  readonly policies?: JobPoliciesRecord;
  /**
   * The name the schedule gives the job (`@Cron({ name })`, `@Interval(name, …)`): shown by the
   * operators' tools, which accept it wherever a job is named. Its keys stay under `Class.method`.
   */
  readonly scheduleName?: string;
  /** The replica that wrote this record last, and when (ms since the epoch). */
  readonly declaredBy: string;
  readonly declaredAt: number;
}

/** A job's policies as its record keeps them: only those it has. */
export interface JobPoliciesRecord {
  readonly catchUp?: { readonly windowMs: number; readonly runs: 'latest' | 'all'; readonly max: number };
  readonly retry?: { readonly attempts: number; readonly backoffMs: number; readonly maxBackoffMs: number };
  readonly recoverCrashed?: true;
  readonly overlap?: 'buffer-one';
  readonly dst?: { readonly springForward?: 'run-at-end-of-gap' | 'skip'; readonly fallBack?: 'once' | 'twice' };
  readonly pauseAfterFailures?: number;
}

/** A guarded job as code declares it (`JobRecord` without who declared it and when). */
export type JobDeclaration = Omit<JobRecord, 'declaredBy' | 'declaredAt'> & { readonly name: string };

/** How a recorded run ended. `abandoned`: still going when its replica shut down (its lock expired by TTL). */
export type RunRecordOutcome = 'ok' | 'error' | 'lost' | 'abandoned';

/**
 * One run of a guarded job, an entry of the `runs` stream (fields as strings; empty when unset).
 * Written with the release of its lock, so nothing is added before the job starts.
 */
export interface RunRecord {
  readonly job: string;
  readonly replica: string;
  /** The scheduled occurrence served (ms since the epoch), or undefined. */
  readonly tick: number | undefined;
  /** When the run started, by the replica's clock (ms since the epoch). */
  readonly startedAt: number;
  readonly durationMs: number;
  readonly outcome: RunRecordOutcome;
  /** The error's message, for `error` (at most 500 characters). */
  readonly error: string | undefined;
  readonly fencingToken: number | undefined;
  /** What started it; a record without one was started by the schedule (or called directly). */
  readonly trigger: RunTrigger;
  /** The attempt at its occurrence, from 1. */
  readonly attempt: number;
}

/** The stream fields of a run record, in the order they are written; unset ones are left out. */
export function runRecordFields(run: RunRecord): string[] {
  // Array.of, not a literal: see `AcquisitionRequest` (locks/lock-request.ts).
  const fields = Array.of('job', run.job, 'replica', run.replica);
  if (run.tick !== undefined) fields.push('tick', String(run.tick));
  fields.push(
    'startedAt', String(Math.round(run.startedAt)),
    'durationMs', String(Math.round(run.durationMs)),
    'outcome', run.outcome,
  ); // prettier-ignore
  if (run.error !== undefined) fields.push('error', run.error.slice(0, 500));
  if (run.fencingToken !== undefined) fields.push('fencingToken', String(run.fencingToken));
  // Left out for a scheduled first attempt: a job with no policy writes what it always wrote.
  if (run.trigger !== 'schedule' || run.attempt !== 1)
    fields.push('trigger', run.trigger, 'attempt', String(run.attempt));
  return fields;
}

/** A run record read back from its stream fields (as XRANGE returns them: name, value, …). */
export function parseRunRecord(fields: readonly string[]): RunRecord {
  const value = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) value.set(fields[i], fields[i + 1]);
  const number = (name: string): number | undefined => (value.get(name) ? Number(value.get(name)) : undefined);
  return {
    job: value.get('job') ?? '',
    replica: value.get('replica') ?? '',
    tick: number('tick'),
    startedAt: number('startedAt') ?? 0,
    durationMs: number('durationMs') ?? 0,
    outcome: (value.get('outcome') ?? 'ok') as RunRecordOutcome,
    error: value.get('error') || undefined,
    fencingToken: number('fencingToken'),
    trigger: (value.get('trigger') || 'schedule') as RunTrigger,
    attempt: number('attempt') ?? 1,
  };
}

/** A job paused fleet-wide: by whom (free text), when, and why. */
export interface PauseRecord {
  readonly by: string;
  readonly at: number;
  /** Why, as the operator wrote it (`pause --note`); absent when none was given. */
  readonly note?: string;
  /** Set when the job paused itself (`pauseAfterFailures`): how many occurrences in a row failed. */
  readonly afterFailures?: number;
}

/** The longest pause note kept. */
export const MAX_PAUSE_NOTE_LENGTH = 1000;

/** A job record as a replica wrote it; undefined for a value no replica wrote. */
export function parseJobRecord(json: string | null): JobRecord | undefined {
  if (json === null) return undefined;
  try {
    const record = JSON.parse(json) as JobRecord;
    return record !== null && typeof record === 'object' ? record : undefined;
  } catch {
    return undefined; // not written by a replica: left out
  }
}

/** A pause record; a value written by hand reads as who paused it. */
export function parsePause(json: string | null): PauseRecord | undefined {
  if (json === null) return undefined;
  try {
    return JSON.parse(json) as PauseRecord;
  } catch {
    return { by: json, at: 0 };
  }
}
