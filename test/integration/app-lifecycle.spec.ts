import type { INestApplicationContext } from '@nestjs/common';
import { DistributedLockModule, DistributedLockService } from '../../src';
import { GuardedJob } from '../fixtures/outage-jobs';
import { createReplica } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('application shutdown', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('releases the locks the app holds and closes the connection it opened', async () => {
    const app = await createReplica([DistributedLockModule.forRoot({ url: redis.url, logger: false })], [GuardedJob]);
    const locks = app.get(DistributedLockService);
    const client = locks.client;
    expect(await locks.acquireLock('held-at-shutdown', 60_000)).toBe(true);
    expect(await redis.client().exists('lock:{held-at-shutdown}')).toBe(1);

    await app.close();

    expect(await redis.client().exists('lock:{held-at-shutdown}')).toBe(0);
    expect(client.status).toBe('end');
    expect(await locks.acquireLock('after-shutdown', 1_000)).toBe(false);
  });

  it('keeps a minimum hold through shutdown', async () => {
    const app = await createReplica([DistributedLockModule.forRoot({ url: redis.url, logger: false })]);
    const lock = await app.get(DistributedLockService).acquire('held-at-least', 60_000, { minHoldMs: 2_000 });
    expect(lock).toBeDefined();
    await app.close();
    const pttl = await redis.client().pttl('lock:{held-at-least}');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(2_000);
  });

  it('leaves a client it was given open', async () => {
    const shared = redis.client();
    const app = await createReplica([DistributedLockModule.forRoot({ client: shared, logger: false })]);
    expect(await app.get(DistributedLockService).acquireLock('shared', 60_000)).toBe(true);
    await app.close();
    expect(shared.status).toBe('ready');
    expect(await shared.exists('lock:{shared}')).toBe(0);
  });

  (CAN_CONTROL_REDIS ? it : it.skip)('returns promptly while Redis is paused', async () => {
    const app = await createReplica([
      DistributedLockModule.forRoot({ url: redis.url, acquireTimeoutMs: 300, logger: false }),
    ]);
    expect(await app.get(DistributedLockService).acquireLock('paused-at-shutdown', 60_000)).toBe(true);
    redis.pause();
    const started = Date.now();
    try {
      await app.close();
    } finally {
      redis.resume();
    }
    // The release and the QUIT each wait at most acquireTimeoutMs.
    expect(Date.now() - started).toBeLessThan(2_500);
  });
});

describe('two Nest applications in one process, each with its own Redis', () => {
  let redisA: TestRedis;
  let redisB: TestRedis;
  let appA: INestApplicationContext;
  let appB: INestApplicationContext;

  beforeAll(async () => {
    [redisA, redisB] = await Promise.all([startTestRedis(), startTestRedis()]);
    [appA, appB] = await Promise.all([
      createReplica([DistributedLockModule.forRoot({ url: redisA.url, keyPrefix: 'a:' })], [GuardedJob]),
      createReplica([DistributedLockModule.forRoot({ url: redisB.url, keyPrefix: 'b:' })], [GuardedJob]),
    ]);
  });
  afterAll(async () => {
    await Promise.all([appA.close(), appB.close()]);
    await Promise.all([redisA.dispose(), redisB.dispose()]);
  });

  it('locks each app’s decorated job on that app’s own Redis', async () => {
    appA.get(GuardedJob).workMs = appB.get(GuardedJob).workMs = 300;
    const runs = Promise.all([appA.get(GuardedJob).run(), appB.get(GuardedJob).run()]);
    await sleep(100);
    expect(await redisA.client().keys('*lock:{outage:job}')).toEqual(['a:lock:{outage:job}']);
    expect(await redisB.client().keys('*lock:{outage:job}')).toEqual(['b:lock:{outage:job}']);
    // Same lock name, different Redis: neither blocks the other.
    expect(await runs).toEqual(['ran', 'ran']);
  });

  it('injects each app’s own service into its instances', () => {
    expect(appA.get(DistributedLockService)).not.toBe(appB.get(DistributedLockService));
  });
});
