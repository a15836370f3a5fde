import { performance } from 'node:perf_hooks';

/**
 * Moves the wall clock (`Date.now()`) of this process, as a replica whose clock reads differently,
 * or steps (NTP, a resumed VM), would see it. The clock keeps running from where it is set; timers,
 * `performance` and Redis keep real time. `set(ms)` puts it at `ms`; `restore()` ends the fake.
 */
export function fakeWallClock(): { set(ms: number): void; restore(): void } {
  const realNow = Date.now.bind(Date);
  const startWall = realNow();
  const startMono = performance.now();
  let offsetMs = 0;
  const now = jest.spyOn(Date, 'now').mockImplementation(() => startWall + (performance.now() - startMono) + offsetMs);
  return {
    set: (ms) => {
      offsetMs = ms - (startWall + (performance.now() - startMono));
    },
    restore: () => now.mockRestore(),
  };
}
