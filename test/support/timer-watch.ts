import { createHook } from 'node:async_hooks';
import { setImmediate as realSetImmediate } from 'node:timers';

/**
 * Watches the timers (`setTimeout`, `setInterval`) created while it is on, unref'd ones included
 * (which `process.getActiveResourcesInfo()` does not list), so a test can tell whether code left
 * one armed.
 */
export class TimerWatch {
  private readonly live = new Map<number, string>();
  private created = 0;
  private readonly hook = createHook({
    init: (id, type) => {
      if (type !== 'Timeout') return;
      this.created++;
      this.live.set(id, new Error().stack ?? '');
    },
    destroy: (id) => {
      this.live.delete(id);
    },
  });

  start(): this {
    this.hook.enable();
    return this;
  }

  stop(): void {
    this.hook.disable();
  }

  /** How many timers were created while watching. */
  get createdCount(): number {
    return this.created;
  }

  /** Timers created while watching and still armed, with where each was created; after a turn of the loop. */
  async armed(): Promise<string[]> {
    await new Promise((resolve) => realSetImmediate(resolve)); // destroy hooks of cleared timers come a turn later
    return [...this.live.values()];
  }
}
