/**
 * The cron tick a callback is serving: its scheduled second. Cron schedules have one-second
 * resolution and fire at (or a little after) the scheduled second by each replica's own clock, so
 * rounding the local time to the nearest second names the same tick on every replica, whatever
 * their clock offsets, as long as the callback starts less than 500 ms late. Pass it as `tick` to
 * `withLock` / `acquire` when scheduling with something other than `@nestjs/schedule`.
 *
 * @example
 * cron.schedule('* * * * *', () => locks.withLock('cron:sync', 60_000, sync, { tick: cronTick() }));
 */
export function cronTick(now: number | Date = Date.now()): number {
  const ms = now instanceof Date ? now.getTime() : now;
  return Math.round(ms / 1000) * 1000;
}
