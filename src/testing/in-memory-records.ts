import { ComputedLockNameError, NO_SINGLE_LOCK_TO_PAUSE } from '../core/errors';
import type { LockEvent } from '../core/events/lock-events';
import { parseJobRecord } from '../core/fleet/fleet-records';

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

/** Whether a recorded event is of `jobOrKey` (a job name or a lock name); every event when undefined. */
export function matches(event: { key: string; job: string | undefined }, jobOrKey: string | undefined): boolean {
  return jobOrKey === undefined || event.job === jobOrKey || event.key === jobOrKey;
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
