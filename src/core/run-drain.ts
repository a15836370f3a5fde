import { raceDeadline } from './waits';
import type { LockHandle } from './lock-handle';

/**
 * What closing waits for: runs in progress (guarded jobs, `withLock` callbacks, auto-extended
 * handles) and the Redis calls in flight for acquisitions and releases. A lock whose holder is at
 * work must not be deleted under it, and an acquisition sent before closing must be answered (and
 * undone) on a connection that is still open.
 */
export class RunDrain {
  private readonly running = new Set<LockHandle>();
  private inFlight = 0;
  private wake: (() => void) | undefined;

  /** `lock`'s holder is at work: closing waits for its release. */
  hold(lock: LockHandle): void {
    this.running.add(lock);
  }

  /** `lock` is released (or forgotten): closing need not wait for it. */
  letGo(lock: LockHandle): void {
    if (this.running.delete(lock)) this.checkIdle();
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
    return [...this.running].map((lock) => lock.key);
  }

  /** Resolves once nothing runs and nothing is in flight, or after `timeoutMs`: the runs still going. */
  async untilIdle(timeoutMs: number): Promise<LockHandle[]> {
    if (this.isIdle()) return [];
    const woken = new Promise<void>((resolve) => (this.wake = resolve));
    await raceDeadline(woken, timeoutMs, () => undefined);
    this.wake = undefined;
    return [...this.running];
  }

  private isIdle(): boolean {
    return this.running.size === 0 && this.inFlight === 0;
  }

  private checkIdle(): void {
    if (this.wake && this.isIdle()) this.wake();
  }
}
