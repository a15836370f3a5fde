import { describeError, type LockLostError } from '../errors';
import type { SkipReason } from '../locks/attempt';
import type { PauseRecord } from '../fleet/fleet-records';
import type { LockLogger } from '../logger';
import type { RunTrigger } from '../policies/ledger';

/** What every event about one lock carries. `job` is set for guarded jobs (`Class.method`, or `runJob`'s name). */
interface LockEventBase {
  /** The lock name as given (not the Redis key). */
  readonly key: string;
  readonly job: string | undefined;
  /** The scheduled occurrence served (ms since the epoch), if any. */
  readonly tick: number | undefined;
  /**
   * What started the run, for a job with a policy (`catchUp`, `retry`); absent otherwise, which
   * means `'schedule'` (or a direct call).
   */
  readonly trigger?: RunTrigger;
  /** The attempt at the occurrence, from 1, for a job with a policy; absent means 1. */
  readonly attempt?: number;
  /** The name the job's schedule gives it (`@Cron({ name })`), when it has one; `job` stays `Class.method`. */
  readonly name?: string;
}

/** The lock was granted: by Redis, or without it by the fail-open mode (`withoutRedis`). */
export interface LockAcquiredEvent extends LockEventBase {
  readonly type: 'acquired';
  readonly fencingToken: number | undefined;
  readonly withoutRedis: boolean;
  /** From sending the acquisition to its answer, on the monotonic clock. */
  readonly latencyMs: number;
}

/** The lock was not granted; `reason` says why (`unavailable`: Redis down under fail-closed). */
export interface LockSkippedEvent extends LockEventBase {
  readonly type: 'skipped';
  readonly reason: SkipReason;
}

/** A guarded run (decorated method, `runJob`, `withLock`) settled. */
export interface LockRanEvent extends LockEventBase {
  readonly type: 'ran';
  /** `error`: the run threw; `lost`: it ended (either way) after its lock was lost. */
  readonly outcome: 'ok' | 'error' | 'lost';
  readonly durationMs: number;
  readonly fencingToken: number | undefined;
  readonly withoutRedis: boolean;
  /** What the run threw, when it did. */
  readonly error: unknown;
}

/** An auto-extended lock was extended. */
export interface LockExtendedEvent extends LockEventBase {
  readonly type: 'extended';
  readonly ttlMs: number;
}

/** A held lock was lost: taken over, expired before an extension was confirmed, or abandoned at shutdown. */
export interface LockLostEvent extends LockEventBase {
  readonly type: 'lost';
  readonly error: LockLostError;
}

/** Redis stopped answering (`outage-started`), or answers again (`outage-ended`, with how long it lasted). */
export interface LockOutageEvent {
  readonly type: 'outage-started' | 'outage-ended';
  /** Where: the Redis server's label, no password. */
  readonly store: string;
  /** Why it counts as down, as the warning logged says it. */
  readonly reason: string;
  /** How long the outage lasted (`outage-ended`); undefined when it starts. */
  readonly durationMs: number | undefined;
}

/** Closing waited for runs in progress: how many finished in time, and the keys of those left to expire. */
export interface LockDrainedEvent {
  readonly type: 'drained';
  readonly finished: number;
  readonly abandoned: readonly string[];
  readonly waitedMs: number;
}

/**
 * An occurrence of a job with `retry` failed for good: its last attempt threw, and no other follows
 * (`attempts` used up, the next occurrence due first, or the application shutting down).
 */
export interface LockFailedEvent extends LockEventBase {
  readonly type: 'failed';
  /** How many attempts were made. */
  readonly attempts: number;
  /** What the last attempt threw. */
  readonly error: unknown;
}

/**
 * A job was paused or resumed fleet-wide from this replica: by an operator through the `fleet`
 * API, or by the job itself (`pauseAfterFailures`). Other replicas learn it from Redis, not as an event.
 */
export interface LockPauseEvent {
  readonly type: 'paused' | 'resumed';
  readonly job: string;
  /** The job's lock name. */
  readonly key: string;
  /** Who paused it, when and why (`paused`); undefined for `resumed`. */
  readonly pause: PauseRecord | undefined;
}

/** Everything the engine reports; switch on `type`. */
export type LockEvent =
  | LockAcquiredEvent
  | LockSkippedEvent
  | LockRanEvent
  | LockFailedEvent
  | LockExtendedEvent
  | LockLostEvent
  | LockOutageEvent
  | LockDrainedEvent
  | LockPauseEvent;

export type LockEventListener = (event: LockEvent) => void;

/**
 * The listeners of one engine. Emitters test `active` before building an event, so no event
 * object is made while no one listens. A listener that throws is logged, never propagated:
 * reporting must not change what the lock decides.
 */
export class LockEvents {
  private listeners: LockEventListener[] = [];
  /** `Class.method` → the name its schedule gives it, for the jobs that have one. */
  private readonly scheduleNames = new Map<string, string>();
  active = false;

  constructor(private readonly logger: LockLogger) {}

  /** Adds `listener`; the function returned removes it. */
  subscribe(listener: LockEventListener): () => void {
    this.listeners = [...this.listeners, listener];
    this.active = true;
    return () => {
      this.listeners = this.listeners.filter((other) => other !== listener);
      this.active = this.listeners.length > 0;
    };
  }

  /** Events of `job` (`Class.method`) carry `name` from now on. */
  nameJob(job: string, name: string): void {
    this.scheduleNames.set(job, name);
  }

  emit(event: LockEvent): void {
    const name = 'job' in event && event.job !== undefined ? this.scheduleNames.get(event.job) : undefined;
    if (name !== undefined) event = { ...event, name } as LockEvent;
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`A lock event listener threw on "${event.type}": ${describeError(error)}`);
      }
    }
  }
}
