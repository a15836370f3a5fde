import { ComputedLockNameError, NO_SINGLE_LOCK_TO_PAUSE } from '../core/errors';
import type { LockEvent } from '../core/events/lock-events';
import { parseJobRecord } from '../core/fleet/fleet-records';
import { type FailureCount, type FailureStreak, nextStreak } from '../core/policies/failure-streak';

// The shapes the in-memory store keeps and records.

/** A lock event as the in-memory store records it: with the name of the replica it happened on. */
export type RecordedLockEvent = LockEvent & { readonly replica: string };

export interface InMemoryLockStoreOptions {
  /**
   * The store's clock, standing for the Redis server's: TTLs expire and ticks are judged by it.
   * @default Date.now, so fake timers (`jest.useFakeTimers()`, `advanceTimersByTime`) move it
   */
  now?: () => number;
}

export interface StoredLock {
  token: string;
  expiresAt: number;
}

/** What Redis keeps in a lock's state hash: the fencing counter and each job's latest tick. */
export interface LockState {
  fence: number;
  readonly ticks: Map<string, number>;
  expiresAt: number;
}

/** A recorded event of one type. */
export type RecordedOf<T extends LockEvent['type']> = Extract<LockEvent, { type: T }> & { readonly replica: string };

/** The recorded events of `type`, of `jobOrKey` (a job name or a lock name; every event when undefined). */
export function recordedOf<T extends 'ran' | 'skipped'>(
  events: readonly RecordedLockEvent[],
  type: T,
  jobOrKey: string | undefined,
): RecordedOf<T>[] {
  return events.filter((event): event is RecordedOf<T> => {
    const { job, key } = event as { job?: string; key?: string };
    return event.type === type && (jobOrKey === undefined || job === jobOrKey || key === jobOrKey);
  });
}

/** The lock name of each job the engines declared (`Class.method` → its key; null when computed per call). */
export class DeclaredJobs {
  private readonly keys = new Map<string, string | null>();

  /** Reads a declaration's fields, job name then value: the job records (not the first-declared times). */
  declare(fields: readonly string[]): void {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const record = parseJobRecord(fields[i + 1]);
      if (record) this.keys.set(fields[i], record.key);
    }
  }

  /** Refuses, as `fleet.pause` does over Redis, to pause a job whose lock name is computed per call. */
  checkPausable(job: string): void {
    if (this.keys.get(job) === null) throw new ComputedLockNameError(job, NO_SINGLE_LOCK_TO_PAUSE);
  }
}

/** The jobs paused fleet-wide, and each job's failed occurrences in a row (`pauseAfterFailures`). */
export class PausedJobs {
  private readonly paused = new Set<string>();
  private readonly streaks = new Map<string, { readonly count: number; readonly tick: number }>();

  has(job: string): boolean {
    return this.paused.has(job);
  }

  pause(job: string): void {
    this.paused.add(job);
  }

  /** Resumes `job`, and starts its failure count anew, as `fleet.resume` does. */
  resume(job: string): void {
    this.paused.delete(job);
    this.streaks.delete(job);
  }

  clear(): void {
    this.paused.clear();
    this.streaks.clear();
  }

  /** What `COUNT_FAILURES` does (`redis/scripts/ledger-scripts.ts`), by the same rule. */
  countFailures({ job, tick, failed, limit }: FailureCount): FailureStreak {
    const streak = nextStreak(this.streaks.get(job), tick, failed);
    if (streak === undefined) return { count: 0, paused: false };
    const counted = streak !== this.streaks.get(job);
    this.streaks.set(job, streak);
    const paused = counted && streak.count >= limit && !this.paused.has(job);
    if (paused) this.paused.add(job);
    return { count: streak.count, paused };
  }
}
