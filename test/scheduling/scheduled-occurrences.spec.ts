import type { INestApplicationContext } from '@nestjs/common';
import { cronTick, DistributedLockModule, DistributedLockService } from '../../src';
import { ExactlyOnceJobs } from '../fixtures/exactly-once-jobs';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';
import { fakeWallClock } from '../support/wall-clock';

const EVERY_5_S = '*/5 * * * * *';
const DAY_MS = 86_400_000;

/**
 * Each replica names the occurrence it serves from its own wall clock. These tests set that clock
 * (only `Date`: timers and Redis run in real time) to the moment a replica's timer fires.
 */
describe('one scheduled occurrence, one run: occurrences named from the @Cron schedule', () => {
  let redis: TestRedis;
  let a: INestApplicationContext;
  let b: INestApplicationContext;
  const logger = new RecordingLogger();
  let clock: ReturnType<typeof fakeWallClock>;
  /** An occurrence of the every-5-s schedule just past by the real clock: one the Redis clock can judge. */
  let occurrence: number;

  beforeAll(async () => {
    redis = await startTestRedis();
    [a, b] = await Promise.all(
      [1, 2].map(() => createReplica([DistributedLockModule.forRoot({ url: redis.url, logger })], [ExactlyOnceJobs])),
    );
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await redis.dispose();
  });
  beforeEach(async () => {
    await redis.client().flushall();
    occurrence = cronTick(EVERY_5_S) - 5_000;
    clock = fakeWallClock();
  });
  afterEach(() => {
    clock.restore();
    for (const app of [a, b]) app.get(ExactlyOnceJobs).runs.length = 0;
    logger.lines.length = 0;
  });

  const runsOf = (job: string) =>
    [a, b].flatMap((app) => app.get(ExactlyOnceJobs).runs.filter((run) => run.job === job));
  /** Fires `job` on `app` as a timer would `offsetMs` after the occurrence (by that replica's clock). */
  const fire = async (app: INestApplicationContext, offsetMs: number, job: 'fastCron' = 'fastCron') => {
    clock.set(occurrence + offsetMs);
    await app.get(ExactlyOnceJobs)[job]();
  };

  it.each([
    ['700 ms late (its event loop was busy across the second)', 700],
    ['4.9 s late, just before the next occurrence', 4_900],
    ['40 ms early', -40],
  ])('runs an occurrence once when one replica fires it %s', async (_case, lateMs) => {
    await fire(a, 5);
    await fire(b, lateMs);
    expect(runsOf('fastCron')).toHaveLength(1);
    expect(runsOf('fastCron')[0].lock!.tick).toBe(occurrence);
  });

  it('refuses a late replica an occurrence that was served, long after the first run ended, and runs the next', async () => {
    await fire(a, 10);
    await fire(b, 3_000);
    expect(runsOf('fastCron')).toHaveLength(1);
    await fire(b, 5_010); // the next occurrence
    expect(runsOf('fastCron').map((run) => run.lock!.tick)).toEqual([occurrence, occurrence + 5_000]);
  });

  it('keeps the served occurrence per job: two jobs sharing a lock key each run their own', async () => {
    clock.set(occurrence + 10);
    await a.get(ExactlyOnceJobs).sharedKeyFirst();
    await b.get(ExactlyOnceJobs).sharedKeySecond();
    await b.get(ExactlyOnceJobs).sharedKeyFirst();
    await a.get(ExactlyOnceJobs).sharedKeySecond();
    expect([runsOf('sharedKeyFirst').length, runsOf('sharedKeySecond').length]).toEqual([1, 1]);
  });

  it('refuses, without recording it, an occurrence a day ahead of the Redis clock, and logs an error with the offset', async () => {
    await fire(a, DAY_MS + 10); // a replica whose clock is a day ahead
    expect(runsOf('fastCron')).toHaveLength(0);
    expect(await redis.client().hget('lock:{cron:fast}:state', 'tick:ExactlyOnceJobs.fastCron')).toBeNull();
    const error = logger.messages('error').find((line) => line.includes('Refused tick'));
    expect(error).toMatch(/this process's clock is 86\d{3} s ahead of Redis's\. Scheduled runs .* \(NTP\)\.$/);

    await fire(b, 10); // replicas on time still run the occurrence
    expect(runsOf('fastCron')).toHaveLength(1);
  });

  it('does not run an occurrence with a direct call of a method that has no @Cron: the lock alone applies', async () => {
    const locks = a.get(DistributedLockService);
    await a.get(ExactlyOnceJobs).named('no-schedule');
    await a.get(ExactlyOnceJobs).named('no-schedule');
    expect(runsOf('named')).toHaveLength(2);
    expect(runsOf('named').every((run) => run.lock!.tick === undefined)).toBe(true);
    expect(locks.holdsLock('no-schedule')).toBe(false);
  });
});

describe('a scheduled occurrence whose acquisition came back too late under fail-closed', () => {
  const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

  describeWithOwnRedis('Redis paused for longer than acquireTimeoutMs', () => {
    let redis: TestRedis;
    let a: INestApplicationContext;
    let b: INestApplicationContext;

    beforeAll(async () => {
      redis = await startTestRedis();
      const options = { url: redis.url, failMode: 'closed' as const, acquireTimeoutMs: 300, logger: false as const };
      [a, b] = await Promise.all(
        [1, 2].map(() => createReplica([DistributedLockModule.forRoot(options)], [ExactlyOnceJobs])),
      );
    });
    afterAll(async () => {
      await Promise.all([a.close(), b.close()]);
      await redis.dispose();
    });

    it('hands the occurrence back, so a replica firing it after the pause runs it', async () => {
      const occurrence = cronTick(EVERY_5_S) - 5_000;
      const clock = fakeWallClock();
      clock.set(occurrence + 10);
      redis.pause();
      const skipped = a.get(ExactlyOnceJobs).fastCron(); // its SET waits in the paused server's socket
      await new Promise((resolve) => setTimeout(resolve, 800));
      redis.resume();
      await skipped;
      expect(a.get(ExactlyOnceJobs).runs).toHaveLength(0);
      // The late grant is undone as soon as its reply arrives.
      const observer = redis.client();
      for (let i = 0; i < 50 && (await observer.exists('lock:{cron:fast}')) === 1; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await observer.exists('lock:{cron:fast}')).toBe(0);

      clock.set(occurrence + 300);
      await b.get(ExactlyOnceJobs).fastCron(); // the same occurrence, fired by a replica a little later
      clock.restore();
      expect(b.get(ExactlyOnceJobs).runs).toHaveLength(1);
    });
  });
});
