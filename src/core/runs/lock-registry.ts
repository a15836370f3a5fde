import type { LockHandle } from '../locks/lock-handle';
import { raceDeadline } from '../waits';

/** How many acquisitions pass between two sweeps of expired, unreleased locks (amortized O(1)). */
const SWEEP_EVERY_GRANTS = 1024;

const ACQUIRING: unique symbol = Symbol('acquisition in flight');

/**
 * Everything this instance knows of its locks, in one place: the lock last taken under each name
 * (or an acquisition in flight), the runs at work that closing waits for, the runs abandoned at
 * shutdown, and the Redis calls in flight that closing must let finish. A lock whose holder is at
 * work must not be deleted under it, and an acquisition sent before closing must be answered (and
 * undone) on a connection that is still open.
 */
export class LockRegistry {
  /**
   * By lock name as given (building the Redis key would cost a hash per lookup): the lock taken
   * last, held or not, or ACQUIRING while an acquisition is in flight, so a concurrent one in this
   * instance is refused at once. Released locks stay until the next acquisition of their name or
   * the next sweep: replacing an entry is cheaper than deleting and re-adding it.
   */
  private readonly byName = new Map<string, LockHandle | typeof ACQUIRING>();
  /**
   * Holders at work (guarded runs, `withLock` callbacks, auto-extended handles) from the first
   * held to the last, linked through the handles themselves: a set would hash each new handle,
   * for a lookup no one makes.
   */
  private running: LockHandle | undefined;
  private lastRunning: LockHandle | undefined;
  private inFlight = 0;
  private wake: (() => void) | undefined;
  private grantsSinceSweep = 0;

  /** Whether `name` is held by this instance, or an acquisition of it is in flight. */
  isBusy(name: string): boolean {
    const lock = this.byName.get(name);
    return lock === ACQUIRING || (lock !== undefined && lock.isHeld);
  }

  /** Marks an acquisition of `name` in flight; returns what the name held before, to put back if it fails. */
  reserve(name: string): LockHandle | undefined {
    const previous = this.named(name);
    this.byName.set(name, ACQUIRING);
    return previous;
  }

  /** The acquisition of `name` is decided: `lock` when granted, else what it held before. */
  settle(name: string, lock: LockHandle | undefined, previous: LockHandle | undefined): void {
    if (lock) {
      this.byName.set(name, lock);
      if (++this.grantsSinceSweep >= SWEEP_EVERY_GRANTS) this.sweep();
    } else if (previous) this.byName.set(name, previous);
    else this.byName.delete(name);
  }

  /** The lock last taken under `name`, held or not. */
  named(name: string): LockHandle | undefined {
    const lock = this.byName.get(name);
    return lock === ACQUIRING ? undefined : lock;
  }

  /** How many locks this instance holds now (a walk over the map: for metrics collection, not hot paths). */
  heldCount(): number {
    let count = 0;
    for (const lock of this.byName.values()) if (lock !== ACQUIRING && lock.isHeld) count++;
    return count;
  }

  /** `lock`'s holder is at work: closing waits for its release. */
  hold(lock: LockHandle): void {
    if (lock.running) return;
    lock.running = true;
    lock.runningPrevious = this.lastRunning;
    lock.runningNext = undefined;
    if (this.lastRunning) this.lastRunning.runningNext = lock;
    else this.running = lock;
    this.lastRunning = lock;
  }

  /** `lock` is released (or forgotten): closing need not wait for it. */
  letGo(lock: LockHandle): void {
    if (!lock.running) return;
    lock.running = false;
    const { runningPrevious: previous, runningNext: next } = lock;
    if (previous) previous.runningNext = next;
    else this.running = next;
    if (next) next.runningPrevious = previous;
    else this.lastRunning = previous;
    lock.runningPrevious = lock.runningNext = undefined;
    this.checkIdle();
  }

  /** A Redis call closing must wait for has been sent; `callEnded()` when it is answered. */
  callStarted(): void {
    this.inFlight++;
  }

  callEnded(): void {
    this.inFlight--;
    this.checkIdle();
  }

  /** The keys of the runs in progress now. */
  runningKeys(): string[] {
    return this.runningLocks().map((lock) => lock.key);
  }

  private runningLocks(): LockHandle[] {
    const locks: LockHandle[] = [];
    for (let lock = this.running; lock; lock = lock.runningNext) locks.push(lock);
    return locks;
  }

  /** Resolves once nothing runs and nothing is in flight, or after `timeoutMs`: the runs still going. */
  async untilIdle(timeoutMs: number): Promise<LockHandle[]> {
    if (this.isIdle()) return [];
    const woken = new Promise<void>((resolve) => (this.wake = resolve));
    await raceDeadline(woken, timeoutMs, () => undefined);
    this.wake = undefined;
    return this.runningLocks();
  }

  private isIdle(): boolean {
    return this.running === undefined && this.inFlight === 0;
  }

  private checkIdle(): void {
    if (this.wake && this.isIdle()) this.wake();
  }

  /** Drops released locks and those left to expire, so names never taken again do not pile up. */
  private sweep(): void {
    this.grantsSinceSweep = 0;
    for (const [name, lock] of this.byName) {
      if (lock === ACQUIRING || lock.isHeld) continue;
      lock.markReleased(); // stops the renewal of one left to expire
      this.letGo(lock);
      this.byName.delete(name);
    }
  }
}
