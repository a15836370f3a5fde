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
