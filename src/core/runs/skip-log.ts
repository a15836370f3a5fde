import type { SkipReason } from '../locks/attempt';
import type { ResolvedLockOptions } from '../options/resolve-options';

const SKIP_DESCRIPTIONS: { readonly [reason in SkipReason]: string } = {
  held: 'is held elsewhere',
  'tick-served': 'already served this occurrence',
  paused: 'is not taken: the job is paused fleet-wide (resume it to run it again)',
  'clock-skew': 'was asked for an occurrence too far from the Redis clock',
  refused: 'was refused by Redis (see the error logged)',
  unavailable: 'could not be taken: Redis is unavailable (fail-closed)',
  closed: 'is not taken: the application is shutting down',
};

/** Logs that a guarded job skipped a run, at `skipLogLevel` (nothing when false). */
export function logSkip(
  { logger, skipLogLevel }: ResolvedLockOptions,
  jobName: string,
  lockName: string,
  reason: SkipReason,
): void {
  if (skipLogLevel === false) return;
  // A logger without the level asked for (console has no verbose) falls back to debug.
  (logger[skipLogLevel] ?? logger.debug)?.call(
    logger,
    `Skipped ${jobName}: lock "${lockName}" ${SKIP_DESCRIPTIONS[reason]}.`,
  );
}
