import { type INestApplicationContext, Injectable } from '@nestjs/common';
import { Cron, CronExpression, Interval, ScheduleModule, SchedulerRegistry, Timeout } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { DistributedLock } from '../../src';
import { DistributedLockTestingModule } from '../../src/testing';

// @nestjs/schedule's own e2e tests (tests/e2e of nestjs/schedule), written the same way: fake timers
// driven synchronously with advanceTimersByTime/runAllTimers, counts asserted right after. Every
// job is guarded, above or below its schedule decorator, with the testing module imported.

@Injectable()
class CronService {
  callsCount = 0;
  callsFinishedCount = 0;
  initialDelayCalls = 0;

  constructor(private readonly schedulerRegistry: SchedulerRegistry) {}

  @Cron(CronExpression.EVERY_SECOND, { name: 'EXECUTES_EVERY_SECOND', utcOffset: 0 })
  @DistributedLock('every-second', 10_000)
  handleCron(): void {
    ++this.callsCount;
    if (this.callsCount > 2) this.schedulerRegistry.getCronJob('EXECUTES_EVERY_SECOND').stop();
  }

  @DistributedLock('every-30-seconds', 10_000)
  @Cron(CronExpression.EVERY_30_SECONDS, { name: 'EXECUTES_EVERY_30_SECONDS', utcOffset: 0 })
  handleCronEvery30Seconds(): void {
    ++this.callsCount;
    if (this.callsCount === 1) this.schedulerRegistry.getCronJob('EXECUTES_EVERY_30_SECONDS').stop();
  }

  @Cron(CronExpression.EVERY_SECOND, { name: 'INITIAL_DELAY', initialDelay: 5000, utcOffset: 0 })
  @DistributedLock('initial-delay', 10_000)
  handleCronWithInitialDelay(): void {
    ++this.initialDelayCalls;
  }

  @DistributedLock('wait-for-completion', 120_000)
  @Cron(CronExpression.EVERY_MINUTE, { name: 'WAIT_FOR_COMPLETION', waitForCompletion: true, utcOffset: 0 })
  async handleLongRunningCron(): Promise<void> {
    ++this.callsCount;
    await new Promise((resolve) => setTimeout(resolve, 61_000));
    ++this.callsFinishedCount;
  }
}

@Injectable()
class IntervalService {
  called = false;
  constructor(private readonly schedulerRegistry: SchedulerRegistry) {}

  @Interval('test', 2500)
  @DistributedLock('interval', 10_000)
  handleInterval(): void {
    this.called = true;
    clearInterval(this.schedulerRegistry.getInterval('test'));
  }
}

@Injectable()
class TimeoutService {
  called = false;

  @DistributedLock('timeout', 10_000)
  @Timeout('test', 2500)
  handleTimeout(): void {
    this.called = true;
  }
}

/** The testing module itself as the application context (`init()` starts the schedule). */
function createApp(service: new (...args: never[]) => unknown): Promise<INestApplicationContext> {
  return Test.createTestingModule({
    imports: [ScheduleModule.forRoot(), DistributedLockTestingModule.forRoot()],
    providers: [service],
  }).compile();
}

const keepOnly = (registry: SchedulerRegistry, name: string): void => {
  for (const other of registry.getCronJobs().keys()) if (other !== name) registry.deleteCronJob(other);
};

describe('@nestjs/schedule e2e tests, every job guarded by the testing module', () => {
  let app: INestApplicationContext;
  afterEach(async () => {
    await app.close();
    jest.useRealTimers();
  });

  describe('Cron', () => {
    beforeEach(async () => {
      app = await createApp(CronService);
      jest.useFakeTimers({ now: 1577836800000 }); // 2020-01-01T00:00:00.000Z
    });

    it('schedules "cron"', async () => {
      const service = app.get(CronService);
      await app.init();
      jest.advanceTimersByTime(3000);
      expect(service.callsCount).toEqual(3);
    });

    it('runs "cron" once after 30 seconds', async () => {
      const service = app.get(CronService);
      await app.init();
      const registry = app.get(SchedulerRegistry);
      const job = registry.getCronJob('EXECUTES_EVERY_30_SECONDS');
      keepOnly(registry, 'EXECUTES_EVERY_30_SECONDS');
      jest.advanceTimersByTime(30_000);
      expect(service.callsCount).toEqual(1);
      expect(job.lastDate()).toEqual(new Date('2020-01-01T00:00:30.000Z'));
    });

    it('waits for "cron" to complete', async () => {
      const service = app.get(CronService);
      await app.init();
      keepOnly(app.get(SchedulerRegistry), 'WAIT_FOR_COMPLETION');
      await jest.advanceTimersByTimeAsync(60_000); // 00:01:00
      expect([service.callsCount, service.callsFinishedCount]).toEqual([1, 0]);
      await jest.advanceTimersByTimeAsync(60_000); // 00:02:00, the first run still going
      expect([service.callsCount, service.callsFinishedCount]).toEqual([1, 0]);
      await jest.advanceTimersByTimeAsync(1_000); // 00:02:01, it ends
      expect([service.callsCount, service.callsFinishedCount]).toEqual([1, 1]);
      await jest.advanceTimersByTimeAsync(59_000); // 00:03:00
      expect(service.callsCount).toEqual(2);
    });

    it('runs a job with an initial delay only after it', async () => {
      const service = app.get(CronService);
      await app.init();
      jest.advanceTimersByTime(4_000);
      expect(service.initialDelayCalls).toEqual(0);
      jest.advanceTimersByTime(3_000);
      expect(service.initialDelayCalls).toBeGreaterThan(0);
    });
  });

  describe('Interval', () => {
    beforeEach(async () => {
      app = await createApp(IntervalService);
      jest.useFakeTimers();
    });

    it('schedules "interval"', async () => {
      const service = app.get(IntervalService);
      await app.init();
      jest.runAllTimers();
      expect(service.called).toBe(true);
    });
  });

  describe('Timeout', () => {
    beforeEach(async () => {
      app = await createApp(TimeoutService);
      jest.useFakeTimers();
    });

    it('schedules "timeout"', async () => {
      const service = app.get(TimeoutService);
      expect(service.called).toBe(false);
      await app.init();
      jest.runAllTimers();
      expect(service.called).toBe(true);
    });
  });
});
