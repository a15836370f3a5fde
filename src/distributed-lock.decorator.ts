import { Inject } from '@nestjs/common';
import {
  assertLockArguments,
  assertTtl,
  checkAcquireOptions,
  type Occurrence,
} from './core/acquire-options';
import { CronSchedule } from './core/cron-schedule';
import { jobTickField } from './core/keys';
import { InvalidLockArgumentError, LockServiceMissingError } from './core/errors';
import type { JobDeclaration } from './core/fleet/fleet-records';
import { expectations } from './core/validation';
import { DistributedLockService } from './distributed-lock.service';
import { copyMethodMetadata } from './utils/copy-method-metadata';

/**
 * A lock name computed per call from the method's arguments, with the instance as `this`,
 * e.g. `(tenantId: string) => \`billing:${tenantId}\``.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LockKeyFactory = (this: any, ...args: any[]) => string;

/** The options-object form of `@DistributedLock`. */
export interface DistributedLockDecoratorOptions {
  /** Lock name shared by every replica that must not run the method at once, or a function of the call's arguments. */
  key: string | LockKeyFactory;
  /** How long the lock lives if its holder dies without releasing it, in ms. It is extended while the method runs. */
  ttlMs: number;
  /**
   * Keep the lock at least this long after the run starts, even if the method ends sooner
   * (ShedLock's lockAtLeastFor). Useful for `@Interval` handlers, whose replicas fire out of step.
   * @default 0
   */
  minHoldMs?: number;
  /** Extend the lock every ttlMs/3 while the method runs. @default true */
  autoExtend?: boolean;
  /** Issue a fencing token, read with `currentLock().fencingToken`. @default the module's `fencing` option */
  fencing?: boolean;
  /**
   * Keep `currentLock()` answering across the method's awaits, in everything it calls
   * (AsyncLocalStorage, which on Node < 24 slows every promise of the process once used). Without
   * it, call `currentLock()` before the method's first `await`. @default false
   */
  lockContext?: boolean;
}

/** Where `@nestjs/schedule` keeps a `@Cron` handler's settings (the same key in versions 4 to 12). */
const CRON_METADATA = 'SCHEDULE_CRON_OPTIONS';

/** What `@Cron` stores: its expression (or date) and the zone it is read in. */
interface CronMetadata {
  cronTime: string | Date | { toMillis(): number };
  timeZone?: string;
  utcOffset?: string | number;
  disabled?: boolean;
}

// The symbol's text is what Nest prints when the service cannot be injected: it says what to import.
const LOCK_SERVICE = Symbol(
  'DistributedLockService, provided by DistributedLockModule: import DistributedLockModule in your root module',
);

type LockedInstance = Record<symbol, DistributedLockService | undefined>;

/** What a job is declared as, read when declared (every decorator has run by then); undefined: not at all. */
export type JobDeclarer = () => JobDeclaration | undefined;

/** The guarded jobs of each class, by its prototype. */
const jobsByPrototype = new WeakMap<object, Map<string, JobDeclarer>>();
/** Where an instance keeps the service injected into it (see `trackInjection`). */
const INJECTED_SERVICE = Symbol('DistributedLockService injected');

/** The guarded jobs of `instance`'s class and of the classes it extends. */
function guardedJobsOf(instance: object): JobDeclarer[] {
  const found = new Map<string, JobDeclarer>();
  for (let prototype = Object.getPrototypeOf(instance); prototype; prototype = Object.getPrototypeOf(prototype)) {
    for (const [name, declare] of jobsByPrototype.get(prototype) ?? []) if (!found.has(name)) found.set(name, declare);
  }
  return [...found.values()];
}

/**
 * Nest injects the service into each instance of a class with guarded methods by assigning this
 * property: the setter hands the service that instance's jobs, so each application declares the
 * jobs it really runs, not every decorated class the process loaded.
 */
function trackInjection(prototype: object): void {
  if (Object.prototype.hasOwnProperty.call(prototype, LOCK_SERVICE)) return;
  Object.defineProperty(prototype, LOCK_SERVICE, {
    configurable: true,
    get(this: Record<symbol, DistributedLockService | undefined>) {
      return this[INJECTED_SERVICE];
    },
    set(this: Record<symbol, DistributedLockService | undefined>, service: DistributedLockService) {
      Object.defineProperty(this, INJECTED_SERVICE, { value: service, configurable: true, writable: true });
      service.adoptJobs(guardedJobsOf(this));
    },
  });
}

/**
 * Runs the method on one replica at a time: the replica that takes the lock runs it and releases
 * the lock when it settles; the others skip it and resolve `undefined`. On a `@Cron` handler each
 * scheduled tick runs once across replicas, even when their clocks differ. Place it above or below
 * `@Cron`, `@Interval` or `@Timeout`. Inside the method, `currentLock()` gives the lock's
 * `fencingToken` and `signal`.
 *
 * @example
 * @Cron(CronExpression.EVERY_DAY_AT_6AM)
 * @DistributedLock('cron:daily-sync', 300_000)
 * async dailySync(): Promise<void> {}
 */
export function DistributedLock(key: string | LockKeyFactory, ttlMs: number): MethodDecorator;
export function DistributedLock(options: DistributedLockDecoratorOptions): MethodDecorator;
export function DistributedLock(
  keyOrOptions: string | LockKeyFactory | DistributedLockDecoratorOptions,
  ttl?: number,
): MethodDecorator {
  const { key, ttlMs, minHoldMs, autoExtend, fencing, lockContext } = normalizeArguments(keyOrOptions, ttl);
  // Checked while the class is being defined, so a bad argument stops the app before it schedules.
  if (typeof key === 'function') assertTtl(ttlMs);
  else assertLockArguments(key, ttlMs);
  const settings = checkAcquireOptions({ minHoldMs, autoExtend, fencing, lockContext }, true);
  const injectLockService = Inject(DistributedLockService);

  return (target, methodName, descriptor: PropertyDescriptor) => {
    const handler: unknown = descriptor.value;
    const className = target.constructor.name;
    const jobName = `${className}.${String(methodName)}`;
    if (typeof handler !== 'function') {
      throw new InvalidLockArgumentError(`@DistributedLock target ${jobName}`, handler, 'a method');
    }
    // Property injection reaches the service of the app that created this instance.
    injectLockService(target, LOCK_SERVICE);
    trackInjection(target);
    /** The `@Cron` schedule, read on first call (`@Cron` may be applied after this decorator); null without one. */
    let schedule: CronSchedule | null | undefined;
    /** What a call without a schedule serves, built once: the decorated call's hot path allocates nothing for it. */
    // A lock name computed per call is not paused nor recorded by name (see Occurrence.tracked).
    const tracked = typeof key === 'string';
    const unscheduled: Occurrence = {
      job: jobName,
      tracked,
      tick: undefined,
      tickField: jobTickField(jobName),
      periodMs: 0,
    };

    const guarded = async function (this: LockedInstance, ...args: unknown[]): Promise<unknown> {
      const locks = this?.[LOCK_SERVICE];
      if (!locks) throw new LockServiceMissingError(className, String(methodName));
      schedule ??= scheduleOf(guarded);
      // The occurrence is named from the schedule and the wall clock, so a late callback (a busy
      // event loop) still names the occurrence it serves, and fake timers drive it in tests.
      const occurrence: Occurrence = schedule
        ? {
            job: jobName,
            tracked,
            tick: schedule.occurrenceAt(Date.now()),
            tickField: unscheduled.tickField,
            periodMs: schedule.periodMs,
          }
        : unscheduled;
      return locks.runGuarded(
        jobName,
        lockKey(key, this, args),
        ttlMs,
        () => handler.apply(this, args),
        settings,
        occurrence,
      );
    };
    copyMethodMetadata(handler, guarded); // @Cron may already be on `handler` when it sits below us
    descriptor.value = guarded;
    const jobs = jobsByPrototype.get(target) ?? new Map<string, JobDeclarer>();
    jobsByPrototype.set(
      target,
      jobs.set(jobName, () => declarationOf(jobName, key, ttlMs, guarded)),
    );
  };
}

/**
 * The schedule of a `@Cron` handler, or null for any other method (`@Interval`, `@Timeout`, a
 * callback of a job added with `SchedulerRegistry.addCronJob`): those serve no named occurrence,
 * and the lock alone keeps their runs apart.
 */
function scheduleOf(method: object): CronSchedule | null {
  const cron = cronOf(method);
  return cron ? new CronSchedule(cron.cronTime, { timeZone: cron.timeZone, utcOffset: utcOffsetOf(cron) }) : null;
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
 * What the operations tools need to know of a job, read once every decorator has run; nothing for
 * a `@Cron({ disabled: true })` job, which the scheduler does not start.
 */
function declarationOf(
  name: string,
  key: string | LockKeyFactory,
  ttlMs: number,
  method: object,
): JobDeclaration | undefined {
  const cron = cronOf(method);
  if (cron?.disabled) return undefined;
  const cronTime = cron?.cronTime;
  return {
    name,
    key: typeof key === 'string' ? key : null,
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

function lockKey(key: string | LockKeyFactory, instance: object, args: unknown[]): string {
  if (typeof key === 'string') return key;
  const computed: unknown = key.apply(instance, args);
  if (!expectations.lockName.test(computed)) {
    throw new InvalidLockArgumentError(
      'the key computed by @DistributedLock',
      computed,
      expectations.lockName.expected,
    );
  }
  return computed;
}

function normalizeArguments(
  keyOrOptions: string | LockKeyFactory | DistributedLockDecoratorOptions,
  ttlMs: number | undefined,
): DistributedLockDecoratorOptions {
  if (typeof keyOrOptions === 'object' && keyOrOptions !== null) {
    if (ttlMs !== undefined) {
      throw new InvalidLockArgumentError(
        'the second argument of @DistributedLock(options)',
        ttlMs,
        'omitted: put ttlMs in the options',
      );
    }
    return keyOrOptions;
  }
  return { key: keyOrOptions, ttlMs: ttlMs as number };
}
