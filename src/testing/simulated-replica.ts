import type { INestApplicationContext } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { EngineClock } from '../core/clock';
import type { LockEvent } from '../core/events/lock-events';
import { CronSchedule } from '../core/jobs/cron-schedule';
import { cronScheduleOf } from '../cron-metadata';
import { GUARDED_JOB, type GuardedJobMetadata } from '../distributed-lock.decorator';
import { copyMethodMetadata } from '../utils/copy-method-metadata';
import type { SimulatedRun } from './occurrence-check';

/** How a replica reaches the shared store: normally, not at all (Redis unreachable from it), or not any more (gone). */
export type Reach = 'up' | 'unreachable' | 'gone';

/**
 * One replica of a `FleetSimulator`: an application context over the fleet's store, on the test's
 * fake timers, whose faults are switched from the test. Its clock is the test's faked `Date`
 * plus its skew; its policy timers are the test's fake timers.
 */
export class SimulatedReplica {
  private reach: Reach = 'up';
  /** The cron jobs this replica's clock fires, once skewed. */
  private readonly driven = new Set<SchedulerCronJob>();
  private beforeFreeze: Reach = 'up';
  private killed = false;
  private skewMs = 0;
  private closed = false;
  /** The application context, once started. */
  app!: INestApplicationContext;
  /** The clock the replica's lock module names occurrences by, and its policies wait on. */
  readonly clock: EngineClock = {
    now: () => Date.now() + this.skewMs,
    // Looked up at each call: the test's fake timers may be installed after the replica starts.
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
  };

  constructor(
    readonly name: string,
    private readonly saw: (run: SimulatedRun) => void,
  ) {}

  /** @internal How it reaches the store now. */
  get reachability(): Reach {
    return this.reach;
  }

  /** Redis becomes unreachable from this replica only: its fail mode decides its guarded calls. */
  disconnect(): void {
    if (this.reach === 'up') this.reach = 'unreachable';
  }

  reconnect(): void {
    if (this.reach === 'unreachable') this.reach = 'up';
  }

  /**
   * The process stops dead (SIGKILL), for good: from now on its guarded calls do not run, and
   * nothing it sends reaches the store, so its locks and heartbeat expire by their TTL and its
   * runs in progress never end for the fleet. (Their code still runs to its end in the test's
   * process, unseen.)
   */
  kill(): void {
    this.killed = true;
    this.reach = 'gone';
  }

  /**
   * As `kill()`, until `thaw()` (SIGSTOP, then SIGCONT). Its code is not suspended: a run that ends
   * while the replica is frozen is never seen by the fleet (no record, no end in the ledger), as
   * if the process had died; one still going at `thaw()` goes on, its lock perhaps lost meanwhile.
   */
  freeze(): void {
    if (this.reach === 'gone') return;
    this.beforeFreeze = this.reach;
    this.reach = 'gone';
  }

  /** Back as it was before `freeze()` (still unreachable from Redis if it was); a killed replica stays dead. */
  thaw(): void {
    if (this.killed || this.closed || this.reach !== 'gone') return;
    this.reach = this.beforeFreeze;
  }

  /**
   * This replica's clock reads the fleet's plus `ms` (negative: behind): it names the occurrences
   * it serves, and times its policies, by it, and its `@Cron` jobs fire when its own clock reaches
   * their occurrences (`ms` early by the fleet's clock when ahead). From the first call on, its cron
   * jobs are fired by the simulator on the fleet's fake timers instead of by `cron`'s own timer.
   */
  skewClock(ms: number): void {
    this.skewMs = ms;
    for (const cron of cronJobsOf(this.app)) this.fireOnOwnClock(cron);
  }

  /**
   * Shuts the replica down as SIGTERM would: `app.close()`. Its runs in progress are abandoned at
   * once with the testing default `shutdownTimeoutMs: 0`; a longer one waits on real time.
   */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.app.close();
  }

  /** @internal The lock module's events: each run that ends, while the replica is seen. */
  readonly onEvent = (event: LockEvent): void => {
    if (this.reach === 'gone' || event.type !== 'ran' || event.job === undefined) return;
    this.saw({
      replica: this.name,
      job: event.job,
      tick: event.tick,
      trigger: event.trigger ?? 'schedule',
      attempt: event.attempt ?? 1,
      outcome: event.outcome,
      withoutLock: event.withoutRedis,
    });
  };

  /**
   * @internal Before the app starts: finds its `@Cron` jobs, guarded or not, and returns their
   * schedules by job name (`Class.method`). An unguarded one is wrapped so its runs are seen too,
   * each serving the occurrence its schedule names at this replica's clock.
   */
  watchJobs(app: INestApplicationContext): Map<string, CronSchedule> {
    const schedules = new Map<string, CronSchedule>();
    const discovery = app.get(DiscoveryService, { strict: false });
    for (const wrapper of discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!wrapper.isDependencyTreeStatic() || !instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      if (!prototype) continue;
      // Inherited methods too, as the library's explorer and @nestjs/schedule's find them.
      for (const methodName of new MetadataScanner().getAllMethodNames(prototype)) {
        const method = prototype[methodName];
        if (typeof method !== 'function') continue;
        const guarded = Reflect.getOwnMetadata(GUARDED_JOB, method) as GuardedJobMetadata | undefined;
        const schedule = guarded ? guarded.job.cronSchedule() : cronScheduleOf(method);
        if (!schedule) continue;
        const job = guarded?.job.name ?? `${prototype.constructor.name}.${methodName}`;
        schedules.set(job, schedule);
        if (!guarded)
          (instance as Record<string, unknown>)[methodName] = this.watched(
            job,
            schedule,
            method as (...args: unknown[]) => unknown,
          );
      }
    }
    return schedules;
  }

  /** Fires `cron` at its occurrences by this replica's clock, until it is stopped (by its handler, the registry or shutdown). */
  private fireOnOwnClock(cron: SchedulerCronJob): void {
    if (this.driven.has(cron) || cron.cronTime.realDate || !cron.isActive) return;
    const { source, timeZone, utcOffset } = cron.cronTime;
    const schedule = new CronSchedule(String(source), {
      timeZone,
      utcOffset: utcOffset === undefined ? undefined : Number(utcOffset),
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stop = cron.stop.bind(cron);
    this.driven.add(cron);
    cron.stop = () => {
      clearTimeout(timer);
      this.driven.delete(cron);
      cron.stop = stop;
      return stop();
    };
    const arm = (): void => {
      const now = this.clock.now();
      const next = schedule.occurrenceAfter(now);
      if (next === undefined) return;
      timer = setTimeout(() => {
        void cron.fireOnTick();
        arm();
      }, next - now);
    };
    stop(); // cron's own timer no longer fires it
    arm();
  }

  /** An unguarded job's method, reporting each run it ends. */
  private watched(job: string, schedule: CronSchedule, method: (...args: unknown[]) => unknown): unknown {
    const report = (outcome: SimulatedRun['outcome'], tick: number | undefined): void => {
      if (this.reach === 'gone') return;
      this.saw({ replica: this.name, job, tick, trigger: 'schedule', attempt: 1, outcome, withoutLock: true });
    };
    const clock = this.clock;
    const watched = function (this: unknown, ...args: unknown[]): unknown {
      const tick = schedule.occurrenceAt(clock.now());
      try {
        const result = method.apply(this, args);
        if (result instanceof Promise) {
          return result.then(
            (value) => (report('ok', tick), value),
            (error: unknown) => {
              report('error', tick);
              throw error;
            },
          );
        }
        report('ok', tick);
        return result;
      } catch (error) {
        report('error', tick);
        throw error;
      }
    };
    copyMethodMetadata(method, watched); // @nestjs/schedule reads @Cron from the method it is given
    return watched;
  }
}

/** What the simulator uses of a `cron` package `CronJob` (as `@nestjs/schedule`'s registry holds them). */
interface SchedulerCronJob {
  readonly isActive: boolean;
  readonly cronTime: { source: unknown; timeZone?: string; utcOffset?: number | string; realDate: boolean };
  stop(): unknown;
  fireOnTick(): unknown;
}

/** The cron jobs of `app`'s `SchedulerRegistry` (found by name: `@nestjs/schedule` is the app's own dependency). */
function cronJobsOf(app: INestApplicationContext): SchedulerCronJob[] {
  const discovery = app.get(DiscoveryService, { strict: false });
  const registry = discovery.getProviders().find((wrapper) => wrapper.name === 'SchedulerRegistry')?.instance as
    { getCronJobs(): Map<string, SchedulerCronJob> } | undefined;
  return registry ? [...registry.getCronJobs().values()] : [];
}
