/**
 * `pauseAfterFailures`: a job's failed occurrences in a row, kept in its lock name's state hash
 * (`jobFailuresField`) as `<count>|<latest tick counted>`, so every replica counts into one.
 *
 * Occurrences end in any order (a retry ends after the next occurrence's run began): an end older
 * than the latest one counted (failed or, once a streak began, succeeded) changes nothing, a failure
 * of an occurrence already counted is not counted twice, and a later success ends the streak.
 */

/** One occurrence's end, counted against its job's streak (`LockStore.countFailures`). */
export interface FailureCount {
  readonly stateKey: string;
  readonly pauseKey: string;
  /** The state hash field of the streak (`jobFailuresField`). */
  readonly field: string;
  readonly job: string;
  readonly tick: number;
  readonly failed: boolean;
  /** The streak that pauses the job. */
  readonly limit: number;
  /** The pause record to set when the streak reaches `limit` (JSON of a `PauseRecord`). */
  readonly pauseRecord: string;
  /** How long the state hash outlives this write (its retention, as a claim keeps it). */
  readonly keepMs: number;
}

/** What a count came to: the failures in a row, and whether this very count paused the job. */
export interface FailureStreak {
  readonly count: number;
  readonly paused: boolean;
}

/** The streak after `tick` ended (`failed` or not), from the stored one (count 0: ended by a success at its tick). */
export function nextStreak(
  stored: { readonly count: number; readonly tick: number } | undefined,
  tick: number,
  failed: boolean,
): { readonly count: number; readonly tick: number } | undefined {
  if (stored && tick <= stored.tick) return stored;
  if (failed) return { count: (stored?.count ?? 0) + 1, tick };
  return stored ? { count: 0, tick } : undefined;
}
