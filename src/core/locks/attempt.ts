import type { LockHandle } from './lock-handle';

/**
 * Why a lock was not taken: `held` by someone (this instance included), or held and the occurrence
 * `buffered` to run once it is released (`overlap: 'buffer-one'`); its `tick-served` already;
 * the job `paused` fleet-wide by an operator;
 * `clock-skew`, its tick too far from the Redis clock to judge; `refused` by Redis (settings it
 * rejects, a key of another type: logged as an error); Redis `unavailable` under fail-closed; or
 * the engine `closed` (shutting down); or, decided before asking Redis, the job skipped for `drift`:
 * live replicas run another definition of it, which owns its occurrences (`fleet/definition-drift.ts`).
 */
export type SkipReason =
  'held' | 'buffered' | 'tick-served' | 'paused' | 'clock-skew' | 'refused' | 'unavailable' | 'closed' | 'drift';

/** What one acquisition round trip came to: the new lock, or why there is none. */
export type Attempt = LockHandle | SkipReason;

export const isLock = (attempt: Attempt): attempt is LockHandle => typeof attempt !== 'string';
