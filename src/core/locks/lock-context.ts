import { AsyncLocalStorage } from 'node:async_hooks';
import type { LockHandle } from './lock-handle';

/**
 * The lock of every run started with `lockContext`, followed across awaits. Only such runs use it:
 * on Node < 24 the first `AsyncLocalStorage.run()` installs promise hooks that slow every later
 * promise of the process, locked or not.
 */
const acrossAwaits = new AsyncLocalStorage<LockHandle | undefined>();

/** The lock of the run whose synchronous part is executing now: free to keep, gone at its first await. */
let inSynchronousPart: LockHandle | undefined;

/**
 * @internal Calls `fn(lock)` with `lock` as its current lock: during its synchronous part always,
 * and across everything it awaits when `followAwaits` is set.
 */
export function runWithLock<T>(lock: LockHandle, fn: (lock: LockHandle) => T, followAwaits: boolean): T {
  const outer = inSynchronousPart;
  inSynchronousPart = lock;
  try {
    if (followAwaits) return acrossAwaits.run(lock, fn, lock);
    // Inside an outer run that follows awaits, hide its lock from this run's later steps.
    return acrossAwaits.getStore() === undefined ? fn(lock) : acrossAwaits.run(undefined, fn, lock);
  } finally {
    inSynchronousPart = outer;
  }
}

/**
 * The lock held by the `@DistributedLock` method (or `withLock` callback) now running, for its
 * `fencingToken` and `signal`; `undefined` outside one. It is there until the run's first `await`;
 * with the `lockContext` option it stays there across awaits, in everything the run calls.
 *
 * @example
 * @Cron(CronExpression.EVERY_MINUTE)
 * @DistributedLock({ key: 'cron:export', ttlMs: 30_000, fencing: true })
 * async export(): Promise<void> {
 *   const lock = currentLock()!; // before the first await
 *   for (const batch of batches) {
 *     lock.throwIfLost();
 *     await this.store.write(batch, lock.fencingToken);
 *   }
 * }
 */
export function currentLock(): LockHandle | undefined {
  return inSynchronousPart ?? acrossAwaits.getStore();
}
