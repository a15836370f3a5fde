import type { INestApplicationContext } from '@nestjs/common';
import { ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { DistributedLockModule } from '../../src';
import { EverySecondJobs, IntervalAndTimeoutJobs } from '../fixtures/report-jobs';
import { createReplica } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Real ScheduleModule, real timers: two replicas run the jobs of test/fixtures/report-jobs.ts.
describe('@DistributedLock with @nestjs/schedule', () => {
  let redis: TestRedis;
  let replicas: INestApplicationContext[];
  let registered: { crons: string[]; intervals: string[] }[];

  beforeAll(async () => {
    redis = await startTestRedis();
    replicas = await Promise.all(
      [1, 2].map(() =>
        createReplica(
          [ScheduleModule.forRoot(), DistributedLockModule.forRoot({ url: redis.url })],
          [EverySecondJobs, IntervalAndTimeoutJobs],
        ),
      ),
    );
    registered = replicas.map((app) => ({
      crons: [...app.get(SchedulerRegistry).getCronJobs().keys()],
      intervals: app.get(SchedulerRegistry).getIntervals(),
    }));
    await sleep(3_500);
    await Promise.all(replicas.map((app) => app.close()));
  });
  afterAll(async () => {
    await redis.dispose();
  });

  const total = (pick: (app: INestApplicationContext) => number) => replicas.map(pick).reduce((sum, n) => sum + n, 0);

  it.each(['lock-below-cron', 'lock-above-cron'])('keeps the cron job %s registered', (name) => {
    for (const replica of registered) expect(replica.crons).toContain(name);
  });

  it('keeps @Interval jobs registered', () => {
    for (const replica of registered) expect(replica.intervals).toContain('lock-interval');
  });

  it.each([
    ['below', (app: INestApplicationContext) => app.get(EverySecondJobs).runs.below],
    ['above', (app: INestApplicationContext) => app.get(EverySecondJobs).runs.above],
  ])('runs the every-second cron with the decorator %s @Cron once per tick across replicas', (_order, runs) => {
    // 3.5 s gives 3 or 4 ticks; two unguarded replicas would give 6 to 8 runs.
    expect(total(runs)).toBeGreaterThanOrEqual(2);
    expect(total(runs)).toBeLessThanOrEqual(4);
  });

  it('runs a @Timeout handler once across replicas', () => {
    expect(total((app) => app.get(IntervalAndTimeoutJobs).runs.timeout)).toBe(1);
  });

  it('never runs an @Interval handler on both replicas at once', () => {
    // Each run holds the lock for 100 ms of a 200 ms interval: 3.5 s allow about 17 runs in all,
    // where two unguarded replicas would make about 34.
    const runs = total((app) => app.get(IntervalAndTimeoutJobs).runs.interval);
    expect(runs).toBeGreaterThanOrEqual(5);
    expect(runs).toBeLessThanOrEqual(22);
  });
});
