import type { LockHandle } from '../lock-handle';

/** How a guarded run ended (see `LockRanEvent`). */
export type RunOutcome = 'ok' | 'error' | 'lost';

/** One guarded run as a tracer sees it: its result, and the call that closes its span. */
export interface TracedRun<T> {
  readonly result: T;
  end(outcome: RunOutcome, error: unknown): void;
}

/**
 * Wraps each guarded run from the inside, e.g. in an OpenTelemetry span that is the active
 * context while the run executes. Only set when tracing is on: the plain path calls nothing.
 */
export interface RunTracer {
  /**
   * Called when a guarded call starts, before its lock is asked for; `trace` gets it as `parent`.
   * A lock decided at Redis's deadline comes back in the deadline timer's async context, not the caller's.
   */
  capture(): unknown;
  trace<T>(lock: LockHandle, run: () => T, parent: unknown): TracedRun<T>;
}
