import type { CronTime } from 'cron';
import { DaylightSaving, type DaylightSavingPolicy } from './daylight-saving';

/** Where a cron expression is read: an IANA time zone, or a fixed offset from UTC in minutes. */
export interface CronZone {
  /** IANA time zone, e.g. `Europe/Paris`. Default: the process's zone. */
  timeZone?: string;
  /** Fixed offset from UTC in minutes; exclusive with `timeZone`. */
  utcOffset?: number;
}

/** A scheduler's timer may fire this much before the occurrence it serves; it still serves it. */
export const EARLY_FIRING_TOLERANCE_MS = 50;

/** How far back to look for the latest occurrence, widening until one is found (at most 8 years). */
const LOOKBACK_MS = [1_000, 60_000, 3_600_000, 86_400_000, 32 * 86_400_000, 366 * 86_400_000, 8 * 366 * 86_400_000];

/**
 * A cron schedule read with the parser `@nestjs/schedule` itself uses (the `cron` package's
 * `CronTime`), so an occurrence is named exactly as the scheduler computed it.
 */
export class CronSchedule {
  private readonly time: CronTime | undefined;
  private readonly zone: string | undefined;
  /** A one-off date (`@Cron(new Date(...))`) has a single occurrence. */
  private readonly once: number | undefined;
  /** The expression (or date) and zone: a schedule read the same way has the same definition. */
  readonly definition: string;
  /** The policy for the wall times a daylight-saving change skips or repeats, if any. */
  private dst: DaylightSaving | undefined;
  private readonly source: string | Date | { toMillis(): number };
  private readonly zoneOptions: CronZone;
  /** The last occurrence found and the one after it: most calls fall between the two. */
  private latest = NaN;
  private following = NaN;
  /** The occurrence after `preparedAfter`, found ahead of its run (`prepareNext`): good while that is `following`. */
  private prepared = NaN;
  private preparedAfter = NaN;

  constructor(source: string | Date | { toMillis(): number }, zone: CronZone = {}) {
    this.source = source;
    this.zoneOptions = zone;
    if (typeof source !== 'string') {
      this.once = source instanceof Date ? source.getTime() : source.toMillis();
      this.definition = new Date(this.once).toISOString();
      return;
    }
    // Loaded on first use: only cron-scheduled jobs need the parser.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { CronTime } = require('cron') as typeof import('cron');
    this.time = new CronTime(source, zone.timeZone, zone.utcOffset as null | undefined);
    this.zone = zone.timeZone ?? (zone.utcOffset === undefined ? undefined : offsetZone(zone.utcOffset));
    this.definition = `${source} ${this.zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone}`;
  }

  /**
   * This schedule with a daylight-saving policy (see `DaylightSavingPolicy`): `dstName` and
   * `namedOccurrencesBetween` apply it. A one-off date and a fixed UTC offset have no change of clocks.
   */
  withDaylightSaving(policy: DaylightSavingPolicy): CronSchedule {
    const copy = new CronSchedule(this.source, this.zoneOptions);
    if (copy.time && this.zoneOptions.utcOffset === undefined) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { CronTime } = require('cron') as typeof import('cron');
      const zone = copy.zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
      copy.dst = new DaylightSaving(
        policy,
        zone,
        (at) => copy.nextAfter(at),
        new CronTime(this.source as string, 'UTC'),
      );
    }
    return copy;
  }

  /** The name of occurrence `tick` under the daylight-saving policy; undefined when the policy skips it. */
  dstName(tick: number): number | undefined {
    return this.dst ? this.dst.name(tick) : tick;
  }

  /**
   * `occurrencesBetween` as the daylight-saving policy names them: second passes named after their
   * first (`fallBack: 'once'`), stand-ins for skipped times left out (`springForward: 'skip'`),
   * second passes `cron` does not fire added (`fallBack: 'twice'`); oldest first, each once.
   */
  namedOccurrencesBetween(from: number, to: number, limit: number): number[] {
    const raw = this.occurrencesBetween(from, to, limit);
    if (!this.dst) return raw;
    const named = raw.map((tick) => this.dst!.name(tick)).filter((tick): tick is number => tick !== undefined);
    const all = new Set([...named, ...this.dst.secondPassesBetween(from, to)]);
    return [...all].sort((a, b) => a - b).slice(0, limit);
  }

  /** With `dst.fallBack: 'twice'`, the second passes from `from` to `to` that `cron` does not fire. */
  secondPassesBetween(from: number, to: number): number[] {
    return this.dst ? this.dst.secondPassesBetween(from, to) : [];
  }

  /** The first occurrence strictly after `at` (ms since the epoch); undefined for a one-off date past. */
  occurrenceAfter(at: number): number | undefined {
    if (this.once !== undefined) return this.once > at ? this.once : undefined;
    return this.nextAfter(at);
  }

  /**
   * The latest occurrence at or before `at` (ms since the epoch), allowing a timer that fires up
   * to EARLY_FIRING_TOLERANCE_MS early; `undefined` when the schedule has not occurred yet. A
   * callback that fires late, however late, is named after the occurrence it serves, unless the
   * next occurrence has come meanwhile: then it serves that one.
   */
  occurrenceAt(at: number): number | undefined {
    const target = at + EARLY_FIRING_TOLERANCE_MS;
    if (this.once !== undefined) return this.once <= target ? this.once : undefined;
    if (target >= this.latest && target < this.following) return this.latest;
    // A job's next run: the occurrence after the one known, found in one step of the parser
    // (each costs 0.4 to 1 ms of CPU), where a search from scratch takes two or more.
    if (target >= this.following) {
      const next = this.preparedAfter === this.following ? this.prepared : this.nextAfter(this.following);
      if (target < next) {
        this.latest = this.following;
        this.following = next;
        return this.latest;
      }
    }
    for (const lookbackMs of LOOKBACK_MS) {
      let occurrence = this.nextAfter(target - lookbackMs);
      if (occurrence > target) continue;
      let next = this.nextAfter(occurrence);
      while (next <= target) {
        occurrence = next;
        next = this.nextAfter(occurrence);
      }
      this.latest = occurrence;
      this.following = next;
      return occurrence;
    }
    return undefined;
  }

  /**
   * Finds the occurrence after the next one now, so that naming the next one, when its run
   * starts, costs no step of the parser. Called between runs, off their path.
   */
  prepareNext(): void {
    if (this.following > this.latest && this.preparedAfter !== this.following) {
      this.prepared = this.nextAfter(this.following);
      this.preparedAfter = this.following;
    }
  }

  /** The time between the last occurrence found and the next (0 before any is found, or for a one-off date). */
  get periodMs(): number {
    const period = this.following - this.latest;
    return Number.isFinite(period) ? period : 0;
  }

  /**
   * The occurrences from `from` to `to` (ms since the epoch, both included), oldest first, at most
   * `limit` of them: ask for one more than you accept to tell a window that holds too many.
   */
  occurrencesBetween(from: number, to: number, limit: number): number[] {
    if (this.once !== undefined) return this.once >= from && this.once <= to ? [this.once] : [];
    const found: number[] = [];
    for (let at = this.nextAfter(from - 1); at <= to && found.length < limit; at = this.nextAfter(at)) {
      found.push(at);
    }
    return found;
  }

  /** The first occurrence strictly after `at`. */
  private nextAfter(at: number): number {
    return this.time!.getNextDateFrom(new Date(at), this.zone).toMillis();
  }
}

function offsetZone(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `UTC${sign}${String(Math.trunc(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** Parsed schedules by expression and zone: parsing is the costly part, and expressions are few. */
const schedules = new Map<string, CronSchedule>();

/**
 * The scheduled occurrence a cron callback is serving: the latest occurrence of `expression` at
 * or before `now`, in ms since the epoch. Replicas whose timers fire at slightly different moments,
 * or late, name the same occurrence, so each one runs once. Pass it as `tick` to `withLock` /
 * `acquire` when scheduling with something other than `@nestjs/schedule` (`@DistributedLock`
 * reads the `@Cron` expression itself). Throws the parser's error for a malformed expression, and
 * a `RangeError` when the schedule has no occurrence yet.
 *
 * @example
 * cron.schedule('0 * * * *', () =>
 *   locks.withLock('cron:hourly', 60_000, sync, { tick: cronTick('0 0 * * * *', { timeZone: 'Europe/Paris' }) }),
 * );
 */
export function cronTick(expression: string, options: CronZone & { now?: number | Date } = {}): number {
  const { now = Date.now(), ...zone } = options;
  const cacheKey = `${expression}\u0000${zone.timeZone ?? ''}\u0000${zone.utcOffset ?? ''}`;
  let schedule = schedules.get(cacheKey);
  if (!schedule) {
    schedule = new CronSchedule(expression, zone);
    schedules.set(cacheKey, schedule);
  }
  const at = now instanceof Date ? now.getTime() : now;
  const occurrence = schedule.occurrenceAt(at);
  if (occurrence === undefined) {
    throw new RangeError(
      `The cron schedule "${expression}" has no occurrence at or before ${new Date(at).toISOString()}.`,
    );
  }
  return occurrence;
}
