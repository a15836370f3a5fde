import type { CronTime } from 'cron';
import { InvalidLockArgumentError } from '../errors';

/**
 * What a `@Cron` job does with the wall times a daylight-saving change skips or repeats, in its
 * schedule's zone. Left out, a job runs as the `cron` package fires it (see docs/policies.md).
 */
export interface DaylightSavingPolicy {
  /**
   * A wall time the clocks skip (02:30 on the day they go forward): `'run-at-end-of-gap'` runs it
   * once when the gap ends (03:00; a schedule with an occurrence of its own there runs that one
   * only), `'skip'` never runs it.
   */
  readonly springForward?: 'run-at-end-of-gap' | 'skip';
  /**
   * A wall time that happens twice (02:30 on the day the clocks go back): `'once'` runs it once
   * across the fleet, at its first pass; `'twice'` runs both passes.
   */
  readonly fallBack?: 'once' | 'twice';
}

/** Checks a job's `dst` option where it is written. */
export function checkDaylightSaving(dst: DaylightSavingPolicy | undefined): DaylightSavingPolicy | undefined {
  if (dst === undefined) return undefined;
  if (dst === null || typeof dst !== 'object') {
    throw new InvalidLockArgumentError(
      'dst',
      dst,
      "an object such as { springForward: 'run-at-end-of-gap', fallBack: 'once' }",
    );
  }
  const { springForward, fallBack } = dst;
  if (springForward !== undefined && springForward !== 'run-at-end-of-gap' && springForward !== 'skip') {
    throw new InvalidLockArgumentError('dst.springForward', springForward, "'run-at-end-of-gap' or 'skip'");
  }
  if (fallBack !== undefined && fallBack !== 'once' && fallBack !== 'twice') {
    throw new InvalidLockArgumentError('dst.fallBack', fallBack, "'once' or 'twice'");
  }
  return { springForward, fallBack };
}

/** A daylight-saving change moves the clocks by at most this much (3 h covers every zone's). */
const LOOK_AROUND_MS = 3 * 3_600_000;

/**
 * The wall times of one zone, read with `Intl`: `wallOf(ms)` is the zone's wall clock at `ms`,
 * written as if it were UTC, so two instants with the same wall time have the same `wallOf`.
 */
class ZoneClock {
  private readonly format: Intl.DateTimeFormat;

  constructor(zone: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  wallOf(ms: number): number {
    const part: Record<string, number> = {};
    for (const { type, value } of this.format.formatToParts(new Date(ms))) part[type] = Number(value);
    const wall = Date.UTC(part.year, part.month - 1, part.day, part.hour, part.minute, part.second);
    return wall + (((ms % 1000) + 1000) % 1000);
  }

  /** How far the zone is ahead of UTC at `ms`. */
  offsetAt(ms: number): number {
    return this.wallOf(ms) - ms;
  }
}

/**
 * A schedule's daylight-saving policy applied to the occurrences the `cron` package names: it
 * names a second pass after its first (`fallBack: 'once'`), drops a time that stands in for one
 * the clocks skipped (`springForward: 'skip'`), and finds the second passes of a fixed wall time
 * that `cron` fires only once (`fallBack: 'twice'`).
 */
export class DaylightSaving {
  private readonly clock: ZoneClock;

  /**
   * @param next The schedule's next occurrence strictly after an instant.
   * @param inUtc The same expression read in UTC: it tells whether a wall time is one of the
   *   expression's own (read as UTC, no clock change can move it).
   */
  constructor(
    private readonly policy: DaylightSavingPolicy,
    zone: string,
    private readonly next: (at: number) => number,
    private readonly inUtc: CronTime,
  ) {
    this.clock = new ZoneClock(zone);
  }

  /** The name of occurrence `tick` under the policy; undefined when the policy skips it. */
  name(tick: number): number | undefined {
    const { clock } = this;
    const shift = clock.offsetAt(tick - LOOK_AROUND_MS) - clock.offsetAt(tick);
    if (shift > 0 && this.policy.fallBack === 'once') {
      // The clocks went back by `shift` since: the same wall time `shift` earlier is the first pass.
      if (clock.wallOf(tick - shift) === clock.wallOf(tick)) return tick - shift;
    }
    if (shift < 0 && this.policy.springForward === 'skip' && !this.isOwnWallTime(tick)) return undefined;
    return tick;
  }

  /**
   * With `fallBack: 'twice'`, the second passes from `from` to `to` that `cron` does not fire: those
   * of an occurrence whose wall time repeats, when the repeat is not an occurrence of its own.
   */
  secondPassesBetween(from: number, to: number): number[] {
    if (this.policy.fallBack !== 'twice') return [];
    // Most windows hold no change of the clocks: nothing to look for.
    if (this.clock.offsetAt(from - LOOK_AROUND_MS) === this.clock.offsetAt(to)) return [];
    // The occurrences `cron` fires are a chain, each the next after the one before (a second pass
    // of 02:00 comes after the first pass of 02:45): a second pass on it needs no run of ours.
    const fired: number[] = [];
    for (let at = this.next(from - LOOK_AROUND_MS - 1); at <= to; at = this.next(at)) fired.push(at);
    const onChain = new Set(fired);
    const found: number[] = [];
    for (const first of fired) {
      const shift = this.clock.offsetAt(first) - this.clock.offsetAt(first + LOOK_AROUND_MS);
      if (shift <= 0) continue;
      const second = first + shift;
      const repeats = this.clock.wallOf(second) === this.clock.wallOf(first);
      if (repeats && second >= from && second <= to && !onChain.has(second)) found.push(second);
    }
    return found;
  }

  /** Whether the wall time at `tick` is one the expression names, not a stand-in for a skipped one. */
  private isOwnWallTime(tick: number): boolean {
    const wall = this.clock.wallOf(tick);
    return this.inUtc.getNextDateFrom(new Date(wall - 1000), 'UTC').toMillis() === wall;
  }
}
