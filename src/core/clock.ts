import { performance } from 'node:perf_hooks';
import * as nodeTimers from 'node:timers';

/**
 * The library's own clock and timers, captured when it loads. Durations (deadlines, TTL validity,
 * renewals, drain time) are measured on the monotonic clock, so a wall-clock step cannot stretch or
 * shorten them; and they use the timers of `node:timers`, which a test's fake timers
 * (`jest.useFakeTimers()`) do not replace: the library keeps real time against a real Redis while
 * the test drives its own schedule. Wall time (`Date.now()`) only names scheduled occurrences.
 */
export const monotonicNow: () => number = performance.now.bind(performance);

export const { setTimeout, clearTimeout, setImmediate, clearImmediate } = nodeTimers;

/**
 * `process.nextTick` as it was when the library loaded. Jest's fake timers replace the global one
 * by default, and a callback queued on the fake runs only when the test advances time: the writes
 * the library holds back until the end of the tick would wait for the test, and their replies for
 * a deadline that passes on real time.
 */
export const nextTick: typeof process.nextTick = process.nextTick;

/**
 * The wall clock that names a job's occurrences, and the timers its policies wait on (looks,
 * retry backoffs, the heartbeat). Locks keep their own monotonic clock and real timers whatever
 * this is. The testing module's fleet simulator gives each replica one on the test's fake timers.
 */
export interface EngineClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

/** The system's wall clock, and timers a test's fake timers do not replace. */
export const SYSTEM_CLOCK: EngineClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/**
 * Whether the global `process.nextTick` is a fake of `@sinonjs/fake-timers`, which Jest's fake
 * timers use and which marks each fake with its `clock`. ioredis opens its socket, and emits its
 * events, on `process.nextTick`: a client created under that fake does not connect until the test
 * advances time.
 */
export const nextTickIsFaked = (): boolean => 'clock' in process.nextTick;

/**
 * Runs the listeners of `emitter`'s next `event` with the real `process.nextTick` in place, when a
 * test has faked it. ioredis emits its `close` and `end` status events on `process.nextTick` from
 * the socket's `close` listener: under the fake, they would stay queued (and counted by
 * `jest.getTimerCount()`) after `close()` resolved. The swap lasts only while that one event's
 * listeners run, synchronously; listeners added earlier than this call run between the swaps.
 */
export function withRealNextTickDuring(emitter: NodeJS.EventEmitter, event: string): void {
  if (!nextTickIsFaked()) return;
  let faked: typeof process.nextTick | undefined;
  emitter.prependOnceListener(event, () => {
    faked = process.nextTick;
    process.nextTick = nextTick;
  });
  emitter.once(event, () => {
    if (faked && process.nextTick === nextTick) process.nextTick = faked;
  });
}
