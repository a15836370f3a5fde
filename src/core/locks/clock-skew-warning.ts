import { monotonicNow } from '../clock';
import type { LockLogger } from '../logger';

/** A replica with a wrong clock says so at most this often. */
const CLOCK_WARNING_EVERY_MS = 60_000;

/**
 * Whether the global `Date` is a fake of `@sinonjs/fake-timers` (Jest's and Sinon's fake timers),
 * which marks its fake with its `clock`.
 */
const dateIsFaked = (): boolean => 'clock' in Date;

/**
 * Says, as an error at most once a minute, that Redis refused a tick too far from its clock: this
 * replica's scheduled runs are all skipped meanwhile. Under a test's faked `Date`, that date is the
 * likely cause, and the line says how to test instead.
 */
export class ClockSkewWarning {
  private lastAt = -Infinity;

  constructor(private readonly logger: LockLogger) {}

  refused(key: string, tick: number, offsetMs: number): void {
    const now = monotonicNow();
    if (now - this.lastAt < CLOCK_WARNING_EVERY_MS) return;
    this.lastAt = now;
    const tickFromRedisMs = tick - (Date.now() - offsetMs);
    const seconds = (ms: number): string => `${Math.abs(Math.round(ms / 1000))} s ${ms >= 0 ? 'ahead of' : 'behind'}`;
    const refused =
      `Refused tick ${new Date(tick).toISOString()} of lock "${key}": it is ${seconds(tickFromRedisMs)} the ` +
      `Redis server's clock, beyond tickAheadLimitMs ahead or stateRetentionMs behind; this process's clock is ` +
      `${seconds(offsetMs)} Redis's.`;
    const cause = dateIsFaked()
      ? ` Date is faked in this process (fake timers set it to ${new Date(Date.now()).toISOString()}), and a real ` +
        `Redis judges occurrences by its own clock: every scheduled run is skipped. Test with ` +
        `DistributedLockTestingModule (dpa-distributed-lock-cron/testing), or keep Date real against a real Redis ` +
        `(jest.useFakeTimers({ doNotFake: ['Date'] })), or fake a date near the real one.`
      : ' Scheduled runs of this replica are skipped until its clock is synchronized (NTP).';
    this.logger.error(refused + cause);
  }
}
