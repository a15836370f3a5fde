import { performance } from 'node:perf_hooks';
import { setTimeout as realSetTimeout } from 'node:timers';

// Waits on real time whatever a test fakes (Jest's fake timers replace neither node:timers nor
// node:perf_hooks): the Redis replies a test waits for come on real time.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => realSetTimeout(resolve, ms));

/** Resolves once `check()` is true, polling every `everyMs`; rejects after `withinMs` of real time. */
export async function eventually(check: () => boolean, withinMs = 5_000, everyMs = 5): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`not within ${withinMs} ms`);
    await sleep(everyMs);
  }
}
