import type { INestApplicationContext } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { DistributedLockModule, DistributedLockService, distributedLockConfig } from '../../src';
import { ReportJobs } from '../fixtures/report-jobs';
import { createReplica } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

// The README's quick start, booted three times against one Redis: three replicas of one app.
describe('the quick start with three replicas', () => {
  let redis: TestRedis;
  let replicas: INestApplicationContext[];
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    redis = await startTestRedis();
    process.env.REDIS_HOST = redis.host;
    process.env.REDIS_PORT = String(redis.port);
    process.env.REDIS_KEY_PREFIX = 'quickstart:';
    replicas = await Promise.all(
      [1, 2, 3].map(() =>
        createReplica(
          [ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] }), DistributedLockModule],
          [ReportJobs],
        ),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all(replicas.map((app) => app.close()));
    await redis.dispose();
    process.env = savedEnv;
  });

  // Each test serves today's 6 AM occurrence afresh: forget that an earlier test served it.
  beforeEach(async () => {
    await redis.client().del('quickstart:lock:{cron:daily-sync}:state');
  });

  it('connects every replica to the Redis named by REDIS_HOST and REDIS_PORT', () => {
    expect(replicas.map((app) => app.get(DistributedLockService).isConnected())).toEqual([true, true, true]);
  });

  it("runs the day's 6 AM occurrence on exactly one replica, however often the replicas fire it", async () => {
    const before = totalRuns();
    for (let firing = 1; firing <= 3; firing++) {
      await Promise.all(replicas.map((app) => app.get(ReportJobs).dailySync()));
      expect(totalRuns() - before).toBe(1);
    }
  });

  it('returns the method result on the replica that ran and undefined on the others', async () => {
    const results = await Promise.all(replicas.map((app) => app.get(ReportJobs).dailySync()));
    expect(results.filter((result) => result === 'synced')).toHaveLength(1);
    expect(results.filter((result) => result === undefined)).toHaveLength(2);
  });

  const totalRuns = () => replicas.map((app) => app.get(ReportJobs).runs).reduce((sum, n) => sum + n, 0);

  it('stores the lock under REDIS_KEY_PREFIX + "lock:" + key while the job runs', async () => {
    const [first] = replicas;
    first.get(ReportJobs).workMs = 300;
    const running = first.get(ReportJobs).dailySync();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const observer = redis.client();
    expect(await observer.pttl('quickstart:lock:{cron:daily-sync}')).toBeGreaterThan(290_000);
    await running;
    expect(await observer.exists('quickstart:lock:{cron:daily-sync}')).toBe(0);
    first.get(ReportJobs).workMs = 50;
  });
});
