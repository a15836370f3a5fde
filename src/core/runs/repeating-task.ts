import { clearTimeout, setTimeout } from 'node:timers';

/**
 * A step repeated every `everyMs` while `isReady()` (a replica's background work against Redis:
 * reading triggers, publishing its definitions). It runs on node:timers, which Jest's fake timers
 * leave alone, as the Redis it talks to is real; a failed step goes to `onError` and the next one
 * still comes; its timer never keeps the process alive.
 */
export class RepeatingTask {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly step: () => Promise<unknown>,
    private readonly everyMs: number,
    private readonly isReady: () => boolean,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Runs the first step now, unless started or stopped already. */
  start(): void {
    if (this.timer === undefined && !this.stopped) this.runIn(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private runIn(delayMs: number): void {
    this.timer = setTimeout(() => void this.run(), delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.isReady()) await this.step();
    } catch (error) {
      this.onError(error);
    }
    if (!this.stopped) this.runIn(this.everyMs);
  }
}
