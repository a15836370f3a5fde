/**
 * Fakes the wall clock (`Date`) only, as a replica whose clock reads differently would see it;
 * timers, `performance` and `process.hrtime` stay real, so the library's deadlines and Redis run
 * as they do in production. `set(ms)` moves the wall clock; `restore()` ends the fake.
 */
export function fakeWallClock(startMs = Date.now()): { set(ms: number): void; restore(): void } {
  jest.useFakeTimers({
    now: startMs,
    doNotFake: [
      'hrtime',
      'nextTick',
      'performance',
      'queueMicrotask',
      'requestAnimationFrame',
      'cancelAnimationFrame',
      'requestIdleCallback',
      'cancelIdleCallback',
      'setImmediate',
      'clearImmediate',
      'setInterval',
      'clearInterval',
      'setTimeout',
      'clearTimeout',
    ],
  });
  return {
    set: (ms) => jest.setSystemTime(ms),
    restore: () => jest.useRealTimers(),
  };
}
