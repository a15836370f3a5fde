import type { LockHandle } from '../locks/lock-handle';

/** How a guarded run ended (see `LockRanEvent`). */
export type RunOutcome = 'ok' | 'error' | 'lost';

/** How a run ended: `lost` once its lock is lost (whether it threw or not), else `error` or `ok`. */
export function runOutcome(lock: LockHandle, threw: boolean): RunOutcome {
  return lock.isLost ? 'lost' : threw ? 'error' : 'ok';
}

/** One guarded run as a tracer sees it: its result, and the call that closes its span. */
export interface TracedRun<T> {
  readonly result: T;
  end(outcome: RunOutcome, error: unknown): void;
}

/**
 * Wraps each guarded run from the inside, e.g. in an OpenTelemetry span that is the active
 * context while the run executes. The engine calls it in the guarded call's own async context,
 * however the lock was decided. Only set when tracing is on: the plain path calls nothing.
 */
export interface RunTracer {
  trace<T>(lock: LockHandle, run: () => T): TracedRun<T>;
}
