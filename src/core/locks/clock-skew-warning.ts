import { monotonicNow } from '../clock';
import type { LockLogger } from '../logger';

/** A replica with a wrong clock warns at most this often. */
const CLOCK_WARNING_EVERY_MS = 60_000;

/** Warns, at most once a minute, that Redis refused a tick too far from its clock, and by how much. */
export class ClockSkewWarning {
  private lastAt = -Infinity;

  constructor(private readonly logger: LockLogger) {}

  refused(key: string, tick: number, offsetMs: number): void {
    const now = monotonicNow();
    if (now - this.lastAt < CLOCK_WARNING_EVERY_MS) return;
    this.lastAt = now;
    const tickFromRedisMs = tick - (Date.now() - offsetMs);
    const seconds = (ms: number): string => `${Math.abs(Math.round(ms / 1000))} s ${ms >= 0 ? 'ahead of' : 'behind'}`;
    this.logger.warn(
      `Refused tick ${new Date(tick).toISOString()} of lock "${key}": it is ${seconds(tickFromRedisMs)} the ` +
        `Redis server's clock, beyond tickAheadLimitMs ahead or stateRetentionMs behind; this process's clock is ` +
        `${seconds(offsetMs)} Redis's. Scheduled runs of this replica are skipped until its clock is synchronized (NTP).`,
    );
  }
}
