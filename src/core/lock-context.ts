import { AsyncLocalStorage } from 'node:async_hooks';
import type { LockHandle } from './lock-handle';

const running = new AsyncLocalStorage<LockHandle>();

/** @internal Runs `fn` with `lock` as the current lock of everything it awaits. */
export function runWithLock<T>(lock: LockHandle, fn: () => T): T {
  return running.run(lock, fn);
}

/**
 * The lock held by the `@DistributedLock` method (or `withLock` callback) now running, for its
 * `fencingToken` and `signal`; `undefined` outside one.
 *
 * @example
 * @Cron(CronExpression.EVERY_MINUTE)
 * @DistributedLock('cron:export', 30_000)
 * async export(): Promise<void> {
 *   const lock = currentLock()!;
 *   for (const batch of batches) {
 *     lock.throwIfLost();
 *     await this.store.write(batch, lock.fencingToken);
 *   }
 * }
 */
export function currentLock(): LockHandle | undefined {
  return running.getStore();
}
