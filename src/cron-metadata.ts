import { CronSchedule } from './core/jobs/cron-schedule';
import type { JobDeclaration } from './core/fleet/fleet-records';

/** Where `@nestjs/schedule` keeps a `@Cron` handler's settings (the same key in versions 4 to 12). */
const CRON_METADATA = 'SCHEDULE_CRON_OPTIONS';
/** Where it keeps the name `@Cron({ name })`, `@Interval(name, …)` or `@Timeout(name, …)` gives a job. */
const NAME_METADATA = 'SCHEDULER_NAME';

/** What `@Cron` stores: its expression (or date) and the zone it is read in. */
interface CronMetadata {
  cronTime: string | Date | { toMillis(): number };
  timeZone?: string;
  utcOffset?: string | number;
  disabled?: boolean;
}

/** What `@Cron` stored on the method, if it has a schedule. */
function cronOf(method: object): CronMetadata | undefined {
  return Reflect.getOwnMetadata(CRON_METADATA, method) as CronMetadata | undefined;
}

/** `@Cron`'s `utcOffset` in minutes (it may be given as a string). */
function utcOffsetOf(cron: CronMetadata): number | undefined {
  return cron.utcOffset === undefined ? undefined : Number(cron.utcOffset);
}

/**
 * The schedule of a `@Cron` handler, or null for any other method (`@Interval`, `@Timeout`, a
 * callback of a job added with `SchedulerRegistry.addCronJob`): those serve no named occurrence,
 * and the lock alone keeps their runs apart.
 */
export function cronScheduleOf(method: object): CronSchedule | null {
  const cron = cronOf(method);
  return cron ? new CronSchedule(cron.cronTime, { timeZone: cron.timeZone, utcOffset: utcOffsetOf(cron) }) : null;
}

/**
 * What the operations tools need to know of a guarded method's job, read once every decorator has
 * run; nothing for a `@Cron({ disabled: true })` job, which the scheduler does not start.
 */
export function cronDeclarationOf(
  name: string,
  key: string | null,
  ttlMs: number,
  method: object,
): JobDeclaration | undefined {
  const cron = cronOf(method);
  if (cron?.disabled) return undefined;
  const cronTime = cron?.cronTime;
  const scheduleName: unknown = Reflect.getOwnMetadata(NAME_METADATA, method);
  return {
    ...(typeof scheduleName === 'string' && scheduleName !== '' && scheduleName !== name && { scheduleName }),
    name,
    key,
    ttlMs,
    cron:
      cronTime === undefined
        ? null
        : typeof cronTime === 'string'
          ? cronTime
          : new Date(cronTime instanceof Date ? cronTime.getTime() : cronTime.toMillis()).toISOString(),
    timeZone: cron?.timeZone ?? null,
    utcOffset: (cron && utcOffsetOf(cron)) ?? null,
  };
}
