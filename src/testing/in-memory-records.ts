import type { LockEvent } from '../core/events/lock-events';

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
