import { applyDecorators, type DynamicModule, Injectable, Logger, Scope } from '@nestjs/common';
import { Cron, CronExpression, Interval, ScheduleModule, SchedulerRegistry, Timeout } from '@nestjs/schedule';
import { Test, type TestingModule } from '@nestjs/testing';
import { CronJob } from 'cron';
import { cronTick, currentLock, DistributedLock, DistributedLockModule, DistributedLockService } from '../../src';
import { DistributedLockTestingModule } from '../../src/testing';
import { RecordingLogger } from '../support/create-replica';
import { eventually, sleep } from '../support/real-time';
import { startTestRedis, type TestRedis } from '../support/redis-server';

// What a guarded job must keep of @nestjs/schedule: eleven behaviours that @nestjs/schedule 6.1.3's
// e2e tests pin (its tests/e2e cron-jobs, interval and timeout specs), written again here for
// guarded jobs; not its suite. Each runs with @DistributedLock above and below the schedule
// decorator, over the testing module's in-memory store and over a real Redis (the hourly one over
// the in-memory store only). Every run records what `currentLock()` said, the occurrence it served:
// a run the lock did not guard, or one serving another occurrence, fails the test.

type Order = 'lock above the schedule decorator' | 'lock below the schedule decorator';
const ORDERS: Order[] = ['lock above the schedule decorator', 'lock below the schedule decorator'];

/** `@DistributedLock` and a schedule decorator on one method, in `order` (the one nearer the method applies first). */
const guarded = (order: Order, schedule: MethodDecorator, lock: MethodDecorator): MethodDecorator =>
  order === 'lock above the schedule decorator' ? applyDecorators(schedule, lock) : applyDecorators(lock, schedule);

/** Seconds after the test's epoch of the occurrence a run served; 'unguarded' for a run without a lock. */
type Seen = number | 'no occurrence' | 'unguarded';
let epoch = 0;
function seen(): Seen {
  const lock = currentLock();
  if (!lock || lock.withoutRedis) return 'unguarded';
  return lock.tick === undefined ? 'no occurrence' : (lock.tick - epoch) / 1_000;
}

/** The job classes, decorated in `order`. */
function jobsFor(order: Order) {
  const lock = (key: string, ttlMs = 10_000) => DistributedLock(key, ttlMs);

  @Injectable()
  class EveryMinute {
    readonly runs: Seen[] = [];
    constructor(private readonly registry: SchedulerRegistry) {}
    @guarded(order, Cron(CronExpression.EVERY_MINUTE, { name: 'EVERY_MINUTE', utcOffset: 0 }), lock('every-minute'))
    handle(): void {
      this.runs.push(seen());
      if (this.runs.length > 2) this.registry.getCronJob('EVERY_MINUTE').stop();
    }
  }

  @Injectable()
  class EveryHour {
    readonly runs: Seen[] = [];
    constructor(private readonly registry: SchedulerRegistry) {}
    @guarded(order, Cron(CronExpression.EVERY_HOUR, { name: 'EVERY_HOUR', utcOffset: 0 }), lock('every-hour'))
    handle(): void {
      this.runs.push(seen());
      if (this.runs.length > 2) this.registry.getCronJob('EVERY_HOUR').stop();
    }
  }

  @Injectable()
  class Every30Seconds {
    readonly runs: Seen[] = [];
    constructor(private readonly registry: SchedulerRegistry) {}
    @guarded(
      order,
      Cron(CronExpression.EVERY_30_SECONDS, { name: 'EVERY_30_SECONDS', utcOffset: 0 }),
      lock('every-30-s'),
    )
    handle(): void {
      this.runs.push(seen());
      this.registry.getCronJob('EVERY_30_SECONDS').stop();
    }
  }

  @Injectable()
  class Disabled {
    readonly runs: Seen[] = [];
    @guarded(order, Cron(CronExpression.EVERY_SECOND, { name: 'DISABLED', disabled: true }), lock('disabled'))
    handle(): void {
      this.runs.push(seen());
    }
    @guarded(
      order,
      Cron(CronExpression.EVERY_SECOND, { name: 'DISABLED_WITH_DELAY', disabled: true, initialDelay: 1_000 }),
      lock('disabled-with-delay'),
    )
    handleDelayed(): void {
      this.runs.push(seen());
    }
  }

  @Injectable()
  class InitialDelay {
    readonly runs: Seen[] = [];
    @guarded(
      order,
      Cron(CronExpression.EVERY_SECOND, { name: 'INITIAL_DELAY', initialDelay: 5_000, utcOffset: 0 }),
      lock('initial-delay'),
    )
    handle(): void {
      this.runs.push(seen());
    }
  }

  @Injectable()
  class WaitForCompletion {
    readonly runs: Seen[] = [];
    finished = 0;
    constructor(private readonly registry: SchedulerRegistry) {}
    @guarded(
      order,
      Cron(CronExpression.EVERY_MINUTE, { name: 'WAIT_FOR_COMPLETION', waitForCompletion: true, utcOffset: 0 }),
      lock('wait-for-completion', 120_000),
    )
    async handle(): Promise<void> {
      this.runs.push(seen());
      await new Promise((resolve) => setTimeout(resolve, 61_000));
      ++this.finished;
      if (this.runs.length > 2) this.registry.getCronJob('WAIT_FOR_COMPLETION').stop();
    }
  }

  @Injectable()
  class EveryTwoAndAHalfSeconds {
    readonly runs: Seen[] = [];
    constructor(private readonly registry: SchedulerRegistry) {}
    @guarded(order, Interval('INTERVAL', 2_500), lock('interval'))
    handle(): void {
      this.runs.push(seen());
      if (this.runs.length > 2) this.registry.deleteInterval('INTERVAL');
    }
  }

  @Injectable()
  class Once {
    readonly runs: Seen[] = [];
    @guarded(order, Timeout('TIMEOUT', 2_500), lock('timeout'))
    handle(): void {
      this.runs.push(seen());
    }
  }

  @Injectable({ scope: Scope.REQUEST })
  class RequestScoped {
    static readonly runs: Seen[] = [];
    @guarded(order, Cron(CronExpression.EVERY_SECOND), lock('request-scoped'))
    handle(): void {
      RequestScoped.runs.push(seen());
    }
  }

  return {
    EveryMinute,
    EveryHour,
    Every30Seconds,
    Disabled,
    InitialDelay,
    WaitForCompletion,
    EveryTwoAndAHalfSeconds,
    Once,
    RequestScoped,
  };
}

/** A job added at run time through SchedulerRegistry: it names its occurrence with `cronTick`, as the README shows. */
@Injectable()
class DynamicJobs {
  readonly runs: Seen[] = [];
  constructor(
    private readonly registry: SchedulerRegistry,
    private readonly locks: DistributedLockService,
  ) {}
  add(): CronJob {
    const job = CronJob.from({
      cronTime: CronExpression.EVERY_SECOND,
      onTick: async () => {
        await this.locks.withLock('dynamic', 10_000, () => this.runs.push(seen()), {
          tick: cronTick(CronExpression.EVERY_SECOND),
        });
      },
    });
    this.registry.addCronJob('DYNAMIC', job);
    return job;
  }
}

interface Backend {
  name: string;
  /** The faked clock's start: a whole minute, as @nestjs/schedule's tests start at 2020-01-01T00:00:00Z. */
  epoch(): number;
  lockModule(): DynamicModule;
  /** Whether a test may span hours: Redis refuses occurrences older than its retention by its own clock. */
  spansHours: boolean;
}

let redis: TestRedis | undefined;
let testNumber = 0;
const BACKENDS: Backend[] = [
  {
    name: 'the testing module',
    epoch: () => Date.parse('2020-01-01T00:00:00Z'),
    lockModule: () => DistributedLockTestingModule.forRoot(),
    spansHours: true,
  },
  {
    name: 'a real Redis',
    // Near the real date: Redis judges the occurrences against its own clock. The faked clock runs
    // minutes ahead of it during a test, hence tickAheadLimitMs.
    epoch: () => Math.ceil((Date.now() + 1) / 60_000) * 60_000,
    lockModule: () =>
      DistributedLockModule.forRoot({
        url: redis!.url,
        keyPrefix: `schedule-behaviours-${++testNumber}:`,
        tickAheadLimitMs: 3_600_000,
        logger: new RecordingLogger(),
      }),
    spansHours: false,
  },
];

describe.each(BACKENDS)('a guarded job keeps what @nestjs/schedule does, over $name', (backend) => {
  let app: TestingModule | undefined;
  beforeAll(async () => {
    if (backend.name === 'a real Redis') redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis?.dispose();
    redis = undefined;
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  /** Boots the schedule and the lock module with `providers`, on a faked clock at the backend's epoch. */
  async function start(...providers: (new (...args: never[]) => unknown)[]): Promise<TestingModule> {
    epoch = backend.epoch();
    jest.useFakeTimers({ now: epoch });
    app = await Test.createTestingModule({
      imports: [ScheduleModule.forRoot(), backend.lockModule()],
      providers,
    }).compile();
    await app.init();
    return app;
  }
  /** Advances the faked clock, then lets runs that wait on Redis (real time) start. */
  async function advance(ms: number): Promise<void> {
    await jest.advanceTimersByTimeAsync(ms);
    await sleep(20);
    await jest.advanceTimersByTimeAsync(0);
  }
  async function expectRuns(runs: Seen[], expected: Seen[]): Promise<void> {
    await eventually(() => runs.length >= expected.length);
    await sleep(20); // and no further run
    expect(runs).toEqual(expected);
  }

  describe.each(ORDERS)('%s', (order) => {
    const jobs = jobsFor(order);

    it('runs a cron every 60 seconds three times, each serving its minute, and not after the handler stops it', async () => {
      const job = (await start(jobs.EveryMinute)).get(jobs.EveryMinute);
      const cron = app!.get(SchedulerRegistry).getCronJob('EVERY_MINUTE');
      for (let minute = 1; minute <= 3; minute++) {
        await advance(60_000);
        await eventually(() => job.runs.length === minute);
      }
      await expectRuns(job.runs, [60, 120, 180]);
      expect(cron.lastDate()).toEqual(new Date(epoch + 180_000));
      await advance(181_000);
      expect(cron.isActive).toBe(false);
      expect(job.runs).toHaveLength(3);
    });

    // Redis refuses occurrences older than its retention by its own clock: hours ahead are for the in-memory store.
    if (backend.spansHours)
      it('runs a cron every hour three times, each serving its hour', async () => {
        const job = (await start(jobs.EveryHour)).get(jobs.EveryHour);
        const cron = app!.get(SchedulerRegistry).getCronJob('EVERY_HOUR');
        await advance(10_800_000);
        await expectRuns(job.runs, [3_600, 7_200, 10_800]);
        expect(cron.lastDate()).toEqual(new Date(epoch + 10_800_000));
        await advance(10_801_000);
        expect(cron.isActive).toBe(false);
        expect(job.runs).toHaveLength(3);
      });

    it('runs a 30-second cron once at :30, and the handler stopping it leaves it inactive', async () => {
      const job = (await start(jobs.Every30Seconds)).get(jobs.Every30Seconds);
      const cron = app!.get(SchedulerRegistry).getCronJob('EVERY_30_SECONDS');
      expect(cron.isActive).toBe(true);
      await advance(29_999);
      await expectRuns(job.runs, []);
      await advance(1);
      await expectRuns(job.runs, [30]);
      expect(cron.lastDate()).toEqual(new Date(epoch + 30_000));
      await advance(31_000);
      expect(cron.isActive).toBe(false);
      expect(job.runs).toEqual([30]);
    });

    it('never starts a disabled cron, with or without an initial delay', async () => {
      const job = (await start(jobs.Disabled)).get(jobs.Disabled);
      const registry = app!.get(SchedulerRegistry);
      expect(registry.getCronJob('DISABLED').isActive).toBe(false);
      expect(registry.getCronJob('DISABLED_WITH_DELAY').isActive).toBe(false);
      await advance(5_000);
      await expectRuns(job.runs, []);
      expect(registry.getCronJob('DISABLED_WITH_DELAY').isActive).toBe(false);
    });

    it('runs nothing before the initial delay ends, then every second from the next one', async () => {
      const job = (await start(jobs.InitialDelay)).get(jobs.InitialDelay);
      await advance(4_999);
      await expectRuns(job.runs, []);
      await advance(1_001); // the delay ended at 5 s; the first tick after it is 6 s
      await expectRuns(job.runs, [6]);
      for (const second of [7, 8]) {
        await advance(1_000);
        await eventually(() => job.runs.at(-1) === second);
      }
      await expectRuns(job.runs, [6, 7, 8]);
    });

    it('waits for a run to complete: a minute job lasting 61 s runs at 1, 3 and 5 min and ends at 6:01', async () => {
      const job = (await start(jobs.WaitForCompletion)).get(jobs.WaitForCompletion);
      const cron = app!.get(SchedulerRegistry).getCronJob('WAIT_FOR_COMPLETION');
      const at = async (ms: number, runs: Seen[], finished: number) => {
        await advance(ms);
        await eventually(() => job.runs.length === runs.length && job.finished === finished);
        // A run that ended has ended for the scheduler only once its lock is released (a Redis reply).
        if (finished === runs.length) await eventually(() => !cron.isCallbackRunning);
        expect(job.runs).toEqual(runs);
      };
      await at(60_000, [60], 0); // 00:01:00
      await at(60_000, [60], 0); // 00:02:00: the first run still going, this minute skipped
      await at(1_000, [60], 1); // 00:02:01
      await at(59_000, [60, 180], 1); // 00:03:00
      await at(61_000, [60, 180], 2); // 00:04:01
      await at(59_000, [60, 180, 300], 2); // 00:05:00
      await at(61_000, [60, 180, 300], 3); // 00:06:01
      expect(cron.isActive).toBe(false);
      await expectRuns(job.runs, [60, 180, 300]);
    });

    it('runs an interval every 2.5 s under the lock, with no occurrence, until the handler deletes it', async () => {
      const job = (await start(jobs.EveryTwoAndAHalfSeconds)).get(jobs.EveryTwoAndAHalfSeconds);
      await advance(2_499);
      await expectRuns(job.runs, []);
      for (let run = 1; run <= 3; run++) {
        await advance(run === 1 ? 1 : 2_500);
        await eventually(() => job.runs.length === run);
      }
      await advance(10_000);
      await expectRuns(job.runs, ['no occurrence', 'no occurrence', 'no occurrence']);
      expect(app!.get(SchedulerRegistry).getIntervals()).toEqual([]);
    });

    it('runs a timeout once, 2.5 s after start, under the lock', async () => {
      const job = (await start(jobs.Once)).get(jobs.Once);
      await advance(2_499);
      await expectRuns(job.runs, []);
      await advance(1);
      await expectRuns(job.runs, ['no occurrence']);
      await advance(10_000);
      await expectRuns(job.runs, ['no occurrence']);
    });

    it('starts nothing after shutdown while an initial delay is pending, and leaves no timer', async () => {
      const job = (await start(jobs.InitialDelay)).get(jobs.InitialDelay);
      await advance(2_000);
      await app!.close();
      app = undefined;
      expect(jest.getTimerCount()).toBe(0); // nothing queued on the faked timers, process.nextTick included
      await advance(5_000);
      expect(job.runs).toEqual([]);
    });

    it("keeps Nest's refusal to schedule a request-scoped provider, and a resolved instance's call runs under the lock", async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      await start(jobs.RequestScoped);
      expect(app!.get(SchedulerRegistry).getCronJobs()).toEqual(new Map());
      expect(warn).toHaveBeenCalledWith(
        'Cannot register cron job "RequestScoped@handle" because it is defined in a non static provider.',
      );
      await advance(3_000);
      expect(jobs.RequestScoped.runs).toEqual([]);

      const instance = await app!.resolve(jobs.RequestScoped);
      await instance.handle();
      expect(jobs.RequestScoped.runs).toEqual([3]); // the latest occurrence of its schedule at the faked now
    });

    it('registers a named job under its name: the registry holds the job whose ticks run the guarded method', async () => {
      const job = (await start(jobs.EveryMinute)).get(jobs.EveryMinute);
      const cron = app!.get(SchedulerRegistry).getCronJob('EVERY_MINUTE');
      cron.fireOnTick();
      await expectRuns(job.runs, [0]); // fired by hand at the epoch: the occurrence at or before it
      expect(cron.isActive).toBe(true);
    });
  });

  it('runs a job added through SchedulerRegistry once per second, each run serving its second, until stopped; closing removes it', async () => {
    const dynamic = (await start(DynamicJobs)).get(DynamicJobs);
    const registry = app!.get(SchedulerRegistry);
    const cron = dynamic.add();
    expect(registry.getCronJob('DYNAMIC')).toBe(cron);
    expect(cron.isActive).toBe(false);
    cron.start();
    for (let second = 1; second <= 3; second++) {
      await advance(1_000);
      await eventually(() => dynamic.runs.length === second);
    }
    cron.stop();
    await advance(3_000);
    await expectRuns(dynamic.runs, [1, 2, 3]);
    await app!.close();
    app = undefined;
    expect(registry.getCronJobs().size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });
});
