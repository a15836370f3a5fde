/**
 * Manual triggers: an operator asks for a run of a job now (`fleet.trigger`, CLI `trigger`), and
 * one live replica that runs the job takes it. The triggering side appends a request to the
 * trigger stream; each replica with `manualTriggers` reads the stream once a second and keeps its
 * listener record (its replica name and jobs, 3 s TTL) set. The first replica to set the
 * request's status key takes it, runs it, and writes in that key whether it started or why not.
 * A request carries the asker's deadline by Redis's clock: no replica takes it, or starts its run,
 * after that; the asker withdraws one nobody took, and waits `START_GRACE_MS` more for the word of
 * one that was taken.
 */

/** A listener record lives this long; a replica sets it again with every read of the stream. */
export const LISTENER_TTL_MS = 3_000;
/** How often a replica reads the trigger stream. */
export const TRIGGER_POLL_MS = 1_000;
/** How long past its deadline the asker waits for the word of a replica that took its trigger. */
export const START_GRACE_MS = 2_000;
/** A trigger's status key outlives any wait for it. */
export const TRIGGER_STATUS_TTL_MS = 3_600_000;
/** The trigger stream keeps about this many requests. */
export const TRIGGER_STREAM_LENGTH = 1_000;

/** A request, as the trigger stream holds it (stream fields). */
export interface TriggerRequest {
  readonly job: string;
  /** The missed occurrence to run (ms since the epoch); undefined: a run now, serving no occurrence. */
  readonly occurrence: number | undefined;
  /** Run even though the job is paused. */
  readonly force: boolean;
  readonly by: string;
  /**
   * By Redis's clock (ms), when whoever asked stops waiting: a replica takes the trigger, and starts
   * its run, only before it (by its estimate of Redis's clock).
   */
  readonly deadline: number;
}

/** What a listener record says: the replica, and the jobs it runs. */
export interface TriggerListener {
  readonly replica: string;
  readonly jobs: readonly string[];
  /** How far the replica's clock is ahead of Redis's (`TIME`, every tenth read), in ms; absent until measured. */
  readonly clockOffsetMs?: number;
}

/** Where a trigger stands: taken by a replica, started there, or refused there with the reason. */
export type TriggerStatus =
  | { readonly state: 'taken'; readonly replica: string }
  | { readonly state: 'started'; readonly replica: string; readonly at: number }
  | { readonly state: 'refused'; readonly replica: string; readonly reason: string };

export function requestFields({ job, occurrence, force, by, deadline }: TriggerRequest): string[] {
  return [
    'deadline',
    String(deadline),
    'job',
    job,
    'occurrence',
    occurrence === undefined ? '' : String(occurrence),
    'force',
    force ? '1' : '0',
    'by',
    by,
  ];
}

/** A stream entry's fields as a request; undefined for an entry no library wrote. */
export function parseRequest(fields: readonly string[]): TriggerRequest | undefined {
  const value = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) value.set(fields[i], fields[i + 1]);
  const job = value.get('job');
  if (!job) return undefined;
  const occurrence = value.get('occurrence') ? Number(value.get('occurrence')) : undefined;
  const deadline = Number(value.get('deadline'));
  if ((occurrence !== undefined && !Number.isSafeInteger(occurrence)) || !Number.isSafeInteger(deadline))
    return undefined;
  return { job, occurrence, force: value.get('force') === '1', by: value.get('by') ?? '', deadline };
}

export function statusValue(status: TriggerStatus): string {
  return JSON.stringify(status);
}

export function parseStatus(value: string | null): TriggerStatus | undefined {
  if (value === null) return undefined;
  try {
    return JSON.parse(value) as TriggerStatus;
  } catch {
    return undefined;
  }
}
