import { monotonicNow } from '../clock';
import type { LockEvents } from '../events/lock-events';
import type { FleetOperations } from '../fleet/fleet-operations';
import type { Occurrence } from '../jobs/job-definition';
import type { AcquireSettings } from '../locks/acquire-options';
import { type Attempt, isLock, type SkipReason } from '../locks/attempt';
import type { LockAcquirer } from '../locks/lock-acquirer';
import { runWithLock } from '../locks/lock-context';
import type { LockHandle } from '../locks/lock-handle';
import { runOutcome, type RunTracer, type TracedRun } from '../telemetry/run-tracer';
import type { LockRegistry } from './lock-registry';

/** What `withLock` reports: whether `fn` ran, and its result when it did, or why it did not. */
export type LockedRun<T> = { ran: true; result: T } | { ran: false; reason: SkipReason };

type NotRun = { readonly ran: false; readonly reason: SkipReason };
const notRun = (reason: SkipReason): NotRun => Object.freeze({ ran: false, reason });

/** One frozen answer per reason, so a skip allocates nothing; the type requires every reason. */
const NOT_RUN: { readonly [reason in SkipReason]: NotRun } = {
  held: notRun('held'),
  buffered: notRun('buffered'),
  'tick-served': notRun('tick-served'),
  paused: notRun('paused'),
  'clock-skew': notRun('clock-skew'),
  refused: notRun('refused'),
  unavailable: notRun('unavailable'),
  closed: notRun('closed'),
  drift: notRun('drift'),
};

/** A guarded run between its start and its release. */
interface RunInProgress {
  readonly lock: LockHandle;
  readonly startedAt: number;
  span: TracedRun<unknown> | undefined;
}

/**
 * A guarded run's life: take the lock, run `fn` holding it (kept alive, traced, reachable as
 * `currentLock()`), then report how it ended and release it with its record, however it ends.
 */
export class GuardedRuns {
  constructor(
    private readonly acquirer: LockAcquirer,
    private readonly registry: LockRegistry,
    private readonly events: LockEvents,
    /** Wraps each run (OpenTelemetry spans); unset unless tracing is on. */
    private readonly tracer: RunTracer | undefined,
    private readonly operations: FleetOperations,
  ) {}

  /**
   * Runs `fn` holding the lock, and releases it however `fn` ends. A lock decided in the caller's
   * turn (the in-memory store, or a refusal known at once) runs `fn` in that same turn, and a
   * synchronous `fn` is released in it too: a timer callback under fake timers runs and lets go of
   * its job before the next timer fires. A lock decided later runs `fn` in the caller's async
   * context (AsyncLocalStorage, spans), never in that of the reply or deadline that decided it.
   */
  run<T>(
    name: string,
    ttlMs: number,
    fn: (lock: LockHandle) => T | Promise<T>,
    settings: AcquireSettings,
    occurrence: Occurrence,
  ): Promise<LockedRun<Awaited<T>>> {
    // Not an async function: the run's own promise is handed back, without one more layer to adopt it.
    try {
      let decidedAtOnce: Attempt | undefined;
      let calling = true;
      const decided = this.acquirer.acquireThen(name, ttlMs, settings, occurrence, (attempt) => {
        if (calling) decidedAtOnce = attempt;
        return attempt;
      });
      calling = false;
      if (decidedAtOnce !== undefined) return Promise.resolve(this.runHolding(decidedAtOnce, fn, settings));
      // A promise reaction runs in the context where it was registered: this caller's.
      return decided.then((attempt) => this.runHolding(attempt, fn, settings));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private runHolding<T>(
    lock: Attempt,
    fn: (lock: LockHandle) => T | Promise<T>,
    settings: AcquireSettings,
  ): LockedRun<Awaited<T>> | Promise<LockedRun<Awaited<T>>> {
    if (!isLock(lock)) return NOT_RUN[lock];
    this.registry.hold(lock);
    const run: RunInProgress = { lock, startedAt: monotonicNow(), span: undefined };
    let result: T | Promise<T>;
    try {
      if (this.tracer) {
        const traced = this.tracer.trace(lock, () => runWithLock(lock, fn, settings.lockContext));
        run.span = traced;
        result = traced.result;
      } else {
        result = runWithLock(lock, fn, settings.lockContext);
      }
    } catch (error) {
      return this.endRun(run, error, true).then(() => Promise.reject(error));
    }
    if (!isThenable(result)) {
      return this.endRun(run, undefined, false).then(() => ({ ran: true, result: result as Awaited<T> }));
    }
    return Promise.resolve(result).then(
      (value) => this.endRun(run, undefined, false).then(() => ({ ran: true as const, result: value })),
      (error: unknown) => this.endRun(run, error, true).then(() => Promise.reject(error)),
    );
  }

  /**
   * Reports the run and releases its lock, with the run's record for a job when operations are on.
   * The release's effect on an in-memory store is immediate.
   */
  private endRun({ lock, startedAt, span }: RunInProgress, error: unknown, failed: boolean): Promise<void> {
    // A run abandoned at shutdown was recorded then; it is not recorded again when it ends.
    const abandoned = lock.wasAbandoned;
    const recorded = this.operations.records(lock) && !abandoned;
    if (!this.events.active && !span && !recorded && !lock.claim) return this.acquirer.releaseHeld(lock);
    const outcome = runOutcome(lock, failed);
    // The ledger first, on the same connection: once the lock is free, the ledger says how it ended.
    // A run that threw is an `error` (retry may attempt it again), its lock lost or not: no other
    // run of the occurrence started meanwhile, as the ledger said it was running.
    if (lock.claim && !abandoned) void this.acquirer.settleClaim(lock, failed ? 'error' : outcome);
    const durationMs = monotonicNow() - startedAt;
    span?.end(outcome, error);
    if (this.events.active) {
      const { key, job, tick, fencingToken, withoutRedis, trigger, attempt } = lock;
      this.events.emit({
        type: 'ran',
        key,
        job,
        tick,
        outcome,
        durationMs,
        fencingToken,
        withoutRedis,
        error,
        ...(lock.claim ? { trigger, attempt } : undefined),
      });
    }
    const record = recorded ? this.operations.runRecord(lock, outcome, durationMs, error) : undefined;
    return this.acquirer.releaseHeld(lock, record);
  }
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
