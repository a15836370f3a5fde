import type { SkipReason } from '../locks/attempt';
import type { ResolvedLockOptions } from '../options/resolve-options';

const SKIP_DESCRIPTIONS: { readonly [reason in SkipReason]: string } = {
  held: 'is held elsewhere',
  buffered: "is held: the occurrence waits to run when it is released (overlap: 'buffer-one')",
  'tick-served': 'already served this occurrence',
  paused: 'is not taken: the job is paused fleet-wide (resume it to run it again)',
  'clock-skew': 'was asked for an occurrence too far from the Redis clock',
  refused: 'was refused by Redis (see the error logged)',
  unavailable: 'could not be taken: Redis is unavailable (fail-closed)',
  closed: 'is not taken: the application is shutting down',
  drift: 'is not asked for: live replicas run a newer definition of the job, which owns its occurrences',
};

/** What a lock `held` by this very replica says: another run of the job, or another job sharing its name. */
const HELD_HERE = 'is held by this replica (another run of the job, or another job sharing the lock name)';

/**
 * Logs that a guarded job skipped a run, at `skipLogLevel` (nothing when false). `heldHere` asks,
 * only for a `held` lock, whether this replica is the holder.
 */
export function logSkip(
  { logger, skipLogLevel }: ResolvedLockOptions,
  jobName: string,
  lockName: string,
  reason: SkipReason,
  heldHere: (lockName: string) => boolean,
): void {
  if (skipLogLevel === false) return;
  const why = reason === 'held' && heldHere(lockName) ? HELD_HERE : SKIP_DESCRIPTIONS[reason];
  // A logger without the level asked for (console has no verbose) falls back to debug.
  (logger[skipLogLevel] ?? logger.debug)?.call(logger, `Skipped ${jobName}: lock "${lockName}" ${why}.`);
}

/** Logs, at `skipLogLevel`, that a wall time the clocks skipped is not run (`dst.springForward: 'skip'`). */
export function logDaylightSavingSkip({ logger, skipLogLevel }: ResolvedLockOptions, jobName: string): void {
  if (skipLogLevel === false) return;
  (logger[skipLogLevel] ?? logger.debug)?.call(
    logger,
    `Skipped ${jobName}: its wall time fell in the daylight-saving gap (dst.springForward: 'skip').`,
  );
}
