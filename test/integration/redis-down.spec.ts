import type { INestApplicationContext } from '@nestjs/common';
import { DistributedLockModule, DistributedLockService, type FailMode } from '../../src';
import { GuardedJob } from '../fixtures/outage-jobs';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, freePort, startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ACQUIRE_TIMEOUT_MS = 300;
/** Generous: the decision must come within about acquireTimeoutMs; the machine is noisy. */
const DECISION_BOUND_MS = ACQUIRE_TIMEOUT_MS + 1_200;

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

type QueueCounts = { offline: number; pending: number };
function queuedCommands(locks: DistributedLockService): QueueCounts {
  const client = locks.client as unknown as { offlineQueue: { length: number }; commandQueue: { length: number } };
  return { offline: client.offlineQueue.length, pending: client.commandQueue.length };
}

describe.each<[FailMode, boolean]>([
  ['open', true],
  ['closed', false],
])('fail-%s when Redis is unavailable', (failMode, runsWithoutRedis) => {
  const apps: INestApplicationContext[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    process.off('unhandledRejection', onUnhandled);
  });
  afterEach(() => expect(unhandled).toEqual([]));

  async function replica(port: number, logger = new RecordingLogger()): Promise<INestApplicationContext> {
    const app = await createReplica(
      [
        DistributedLockModule.forRoot({
          host: '127.0.0.1',
          port,
          failMode,
          acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
          logger,
        }),
      ],
      [GuardedJob],
    );
    apps.push(app);
    return app;
  }

  describe('Redis never up', () => {
    let app: INestApplicationContext;
    const logger = new RecordingLogger();

    beforeAll(async () => {
      app = await replica(await freePort(), logger); // nothing listens there
    });

    it('boots anyway, reporting it is not connected', () => {
      expect(app.get(DistributedLockService).isConnected()).toBe(false);
    });

    it(`${runsWithoutRedis ? 'runs' : 'skips'} the job, deciding within about acquireTimeoutMs`, async () => {
      const { value, ms } = await timed(() => app.get(GuardedJob).run());
      expect(value).toBe(runsWithoutRedis ? 'ran' : undefined);
      expect(ms).toBeLessThan(DECISION_BOUND_MS);
    });

    it(`resolves acquireLock ${runsWithoutRedis} at once during a known outage`, async () => {
      const { value, ms } = await timed(() => app.get(DistributedLockService).acquireLock('never-up', 1_000));
      expect(value).toBe(runsWithoutRedis);
      expect(ms).toBeLessThan(DECISION_BOUND_MS);
      await app.get(DistributedLockService).releaseLock('never-up');
    });

    it('warns once for the whole outage, however many ticks fall in it', async () => {
      for (let tick = 0; tick < 20; tick++) await app.get(GuardedJob).run();
      expect(logger.messages('warn')).toHaveLength(1);
      expect(logger.messages('warn')[0]).toMatch(/^Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is unavailable/);
    });

    it('keeps nothing queued in memory while down: 500 ticks resolve and both client queues stay empty', async () => {
      const locks = app.get(DistributedLockService);
      const job = app.get(GuardedJob);
      const { ms } = await timed(() => Promise.all(Array.from({ length: 500 }, () => job.run())));
      expect(ms).toBeLessThan(DECISION_BOUND_MS * 2);
      expect(queuedCommands(locks)).toEqual({ offline: 0, pending: 0 });
    });
  });

  const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

  describeWithOwnRedis('Redis that fails while in use', () => {
    let redis: TestRedis;
    let a: INestApplicationContext;
    let b: INestApplicationContext;
    const logger = new RecordingLogger();

    beforeAll(async () => {
      redis = await startTestRedis();
      a = await replica(redis.port, logger);
      b = await replica(redis.port);
    });
    afterAll(async () => {
      await redis.dispose();
    });

    it('lets a job that holds the lock finish when Redis is killed mid-run; the release resolves', async () => {
      a.get(GuardedJob).workMs = 300;
      const running = a.get(GuardedJob).run();
      await sleep(100);
      await redis.kill();
      const { value, ms } = await timed(() => running);
      expect(value).toBe('ran');
      expect(ms).toBeLessThan(200 + DECISION_BOUND_MS);
      a.get(GuardedJob).workMs = 0;
    });

    it(`${runsWithoutRedis ? 'runs' : 'skips'} ticks while Redis is down`, async () => {
      const before = a.get(GuardedJob).runs;
      await a.get(GuardedJob).run();
      expect(a.get(GuardedJob).runs - before).toBe(runsWithoutRedis ? 1 : 0);
    });

    it('reconnects after a restart and deduplicates again, logging the recovery once', async () => {
      await redis.start();
      expect(await a.get(DistributedLockService).waitUntilConnected(5_000)).toBe(true);
      expect(await b.get(DistributedLockService).waitUntilConnected(5_000)).toBe(true);
      a.get(GuardedJob).workMs = b.get(GuardedJob).workMs = 100;
      const before = a.get(GuardedJob).runs + b.get(GuardedJob).runs;
      const results = await Promise.all([a.get(GuardedJob).run(), b.get(GuardedJob).run()]);
      expect(results.sort()).toEqual(['ran', undefined]);
      expect(a.get(GuardedJob).runs + b.get(GuardedJob).runs - before).toBe(1);
      expect(logger.messages('log').filter((line) => line.includes('is reachable again'))).toHaveLength(1);
      expect(logger.messages('warn')).toHaveLength(1);
      a.get(GuardedJob).workMs = b.get(GuardedJob).workMs = 0;
    });

    it(`decides within about acquireTimeoutMs when Redis is paused (slower than the deadline), and ${runsWithoutRedis ? 'runs' : 'skips'}`, async () => {
      redis.pause();
      try {
        const { value, ms } = await timed(() => a.get(GuardedJob).run());
        expect(value).toBe(runsWithoutRedis ? 'ran' : undefined);
        expect(ms).toBeLessThan(DECISION_BOUND_MS * 2); // acquisition and release each have the deadline
      } finally {
        redis.resume();
      }
      expect(await a.get(DistributedLockService).waitUntilConnected(5_000)).toBe(true);
    });

    it('leaves a lock whose release could not reach Redis to expire by its TTL', async () => {
      const locks = a.get(DistributedLockService);
      await sleep(200); // let the paused commands drain
      expect(await locks.acquireLock('expires-by-ttl', 1_500)).toBe(true);
      redis.pause();
      const { ms } = await timed(() => locks.releaseLock('expires-by-ttl'));
      redis.resume();
      expect(ms).toBeLessThan(DECISION_BOUND_MS);
      const observer = redis.client();
      const pttl = await observer.pttl('lock:{expires-by-ttl}');
      // The release was queued behind the pause; what Redis holds afterwards is gone or expiring.
      expect(pttl === -2 || (pttl > 0 && pttl <= 1_500)).toBe(true);
      await sleep(1_700);
      expect(await observer.exists('lock:{expires-by-ttl}')).toBe(0);
    });
  });
});
