import { type INestApplicationContext, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { DistributedLock, DistributedLockModule, DistributedLockService } from '../../src';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

/** These tests kill, pause or cut off Redis: only a Redis the suite started itself, never one named by REDIS_URL. */
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts runs; `workMs` stands for the job's duration. */
abstract class CountedJob {
  runs = 0;
  workMs = 0;

  protected async work(): Promise<'ran'> {
    this.runs++;
    if (this.workMs > 0) await sleep(this.workMs);
    return 'ran';
  }
}

/** Provided by app A only. */
@Injectable()
class BillingJob extends CountedJob {
  @DistributedLock('two-apps:billing', 10_000)
  run(): Promise<'ran'> {
    return this.work();
  }
}

/** Provided by app B only. */
@Injectable()
class MailingJob extends CountedJob {
  @DistributedLock('two-apps:mailing', 10_000)
  run(): Promise<'ran'> {
    return this.work();
  }
}

/** Provided by both apps, under the same lock name. */
@Injectable()
class SharedJob extends CountedJob {
  @DistributedLock('two-apps:shared', 10_000)
  run(): Promise<'ran'> {
    return this.work();
  }
}

const JOB_CLASSES = [BillingJob, MailingJob, SharedJob];

describeWithOwnRedis('two Nest applications in one process, each with its own redis-server', () => {
  let redisA: TestRedis;
  let redisB: TestRedis;
  let appA: INestApplicationContext;
  let appA2: INestApplicationContext;
  let appB: INestApplicationContext;
  const loggerA = new RecordingLogger();
  const loggerB = new RecordingLogger();

  const boot = (redis: TestRedis, logger: RecordingLogger, providers: (typeof JOB_CLASSES)[number][]) =>
    createReplica(
      [
        DistributedLockModule.forRoot({
          host: '127.0.0.1',
          port: redis.port,
          acquireTimeoutMs: 300,
          failMode: 'closed',
          logger,
        }),
      ],
      providers,
    );

  /** The lock keys present in a Redis, sorted: `lock:{<name>}`, not the state, history or pause keys beside them. */
  const lockKeys = async (redis: TestRedis) =>
    (await redis.client().keys('lock:*')).filter((key) => key.endsWith('}')).sort();

  function setWork(ms: number): void {
    for (const app of [appA, appA2, appB]) {
      for (const jobClass of JOB_CLASSES) {
        try {
          app.get(jobClass).workMs = ms;
        } catch {
          /* not provided in this app */
        }
      }
    }
  }

  beforeAll(async () => {
    [redisA, redisB] = await Promise.all([startTestRedis(), startTestRedis()]);
    // App A runs as two replicas on Redis A; app B is a single replica on Redis B.
    [appA, appA2, appB] = await Promise.all([
      boot(redisA, loggerA, [BillingJob, SharedJob]),
      boot(redisA, loggerA, [BillingJob, SharedJob]),
      boot(redisB, loggerB, [MailingJob, SharedJob]),
    ]);
  });
  afterAll(async () => {
    await Promise.all([appA, appA2, appB].map((app) => app.close()));
    await Promise.all([redisA.dispose(), redisB.dispose()]);
  });

  it('gives each app its own service, connected to its own Redis', () => {
    const [locksA, locksB] = [appA.get(DistributedLockService), appB.get(DistributedLockService)];
    expect(locksA).not.toBe(locksB);
    expect((locksA.client as Redis).options.port).toBe(redisA.port);
    expect((locksB.client as Redis).options.port).toBe(redisB.port);
    expect([locksA.isConnected(), locksB.isConnected()]).toEqual([true, true]);
  });

  it('locks each app’s decorated jobs on its own Redis and never on the other', async () => {
    setWork(400);
    const running = Promise.all([appA.get(BillingJob).run(), appB.get(MailingJob).run(), appA.get(SharedJob).run()]);
    await sleep(150);

    expect(await lockKeys(redisA)).toEqual(['lock:{two-apps:billing}', 'lock:{two-apps:shared}']);
    expect(await lockKeys(redisB)).toEqual(['lock:{two-apps:mailing}']);

    expect(await running).toEqual(['ran', 'ran', 'ran']);
    expect(await lockKeys(redisA)).toEqual([]);
    expect(await lockKeys(redisB)).toEqual([]);
    // Each run is recorded where its lock was taken, and only there.
    expect((await redisA.client().keys('*:runs')).sort()).toEqual([
      'lock:{two-apps:billing}:runs',
      'lock:{two-apps:shared}:runs',
    ]);
    expect(await redisB.client().keys('*:runs')).toEqual(['lock:{two-apps:mailing}:runs']);
    setWork(0);
  });

  it('runs both apps’ jobs under the same lock name; within app A, on exactly one of its replicas', async () => {
    setWork(300);
    const before = [appA, appA2, appB].map((app) => app.get(SharedJob).runs);

    const results = await Promise.all([appA, appA2, appB].map((app) => app.get(SharedJob).run()));

    const runs = [appA, appA2, appB].map((app, index) => app.get(SharedJob).runs - before[index]);
    expect(runs[0] + runs[1]).toBe(1); // app A: one replica ran, the other skipped
    expect(runs[2]).toBe(1); // app B locks on Redis B: A's lock does not stop it
    expect(results[2]).toBe('ran');
    expect(results.slice(0, 2).sort()).toEqual(['ran', undefined]);
    setWork(0);
  });

  it('keeps an outage of one app’s Redis to that app: B skips (fail-closed) and warns, A runs and stays quiet', async () => {
    await redisB.kill();
    try {
      expect(await appB.get(MailingJob).run()).toBeUndefined();
      expect(await appB.get(SharedJob).run()).toBeUndefined();
      expect(await appA.get(BillingJob).run()).toBe('ran');
      expect(await appA.get(SharedJob).run()).toBe('ran');

      expect(loggerB.messages('warn')).toHaveLength(1);
      expect(loggerB.messages('warn')[0]).toContain(`127.0.0.1:${redisB.port}`);
      expect(loggerA.messages('warn')).toEqual([]);
      expect(appA.get(DistributedLockService).isConnected()).toBe(true);
    } finally {
      await redisB.start();
    }
    expect(await appB.get(DistributedLockService).waitUntilConnected(8_000)).toBe(true);
    expect(await appB.get(MailingJob).run()).toBe('ran');
  });
});
