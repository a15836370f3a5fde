import type { INestApplicationContext } from '@nestjs/common';
import { cronTick, DistributedLockModule, DistributedLockService, LockLostError } from '../../src';
import { ExactlyOnceJobs } from '../fixtures/exactly-once-jobs';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('exactly once per tick, on a real Redis', () => {
  let redis: TestRedis;
  let a: INestApplicationContext;
  let b: INestApplicationContext;
  const logger = new RecordingLogger();

  beforeAll(async () => {
    redis = await startTestRedis();
    [a, b] = await Promise.all([
      createReplica([DistributedLockModule.forRoot({ url: redis.url, fencing: true })], [ExactlyOnceJobs], logger),
      createReplica([DistributedLockModule.forRoot({ url: redis.url, fencing: true })], [ExactlyOnceJobs], logger),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await redis.dispose();
  });
  afterEach(() => {
    for (const app of [a, b]) app.get(ExactlyOnceJobs).runs.length = 0;
  });

  const runsOf = (job: string) =>
    [a, b].flatMap((app) => app.get(ExactlyOnceJobs).runs.filter((run) => run.job === job));

  describe('long jobs', () => {
    // longCron serves the day's midnight occurrence: each test serves it afresh.
    beforeEach(async () => {
      await redis.client().del('lock:{cron:long}:state');
    });

    it('keeps a job that outlives its TTL exclusive by extending the lock while it runs', async () => {
      a.get(ExactlyOnceJobs).workMs = 2_000; // more than three TTLs of 600 ms
      const long = a.get(ExactlyOnceJobs).longCron();
      await sleep(300);
      const contenders: Promise<void>[] = [];
      for (let i = 0; i < 6; i++) {
        await sleep(250);
        // A different tick each time, so only the lock can stop them.
        contenders.push(
          b
            .get(DistributedLockService)
            .acquireLock('cron:long', 600)
            .then((taken) => expect(taken).toBe(false)),
        );
      }
      await Promise.all([long, ...contenders]);
      a.get(ExactlyOnceJobs).workMs = 20;
      expect(runsOf('longCron')).toHaveLength(1);
      expect(await redis.client().exists('lock:{cron:long}')).toBe(0);
    });

    it('tells the running job through its signal when Redis lost the lock, and logs an error', async () => {
      a.get(ExactlyOnceJobs).workMs = 1_000;
      const long = a.get(ExactlyOnceJobs).longCron();
      await sleep(100);
      await redis.client().del('lock:{cron:long}'); // as a failover or eviction would
      await long;
      a.get(ExactlyOnceJobs).workMs = 20;
      const [run] = runsOf('longCron');
      expect(run.lock!.signal.aborted).toBe(true);
      expect(run.lock!.signal.reason).toBeInstanceOf(LockLostError);
      expect(logger.lockMessages('error')).toContainEqual(
        expect.stringContaining('Lock "cron:long" was lost while held'),
      );
    });

    it('tells a job that stalled past its TTL that its lock is lost, at its next check', async () => {
      const { thrown, abortedReason } = await a.get(ExactlyOnceJobs).blocksTheEventLoop(600);
      expect(thrown).toBeInstanceOf(LockLostError);
      expect(abortedReason).toBeInstanceOf(LockLostError);
    });
  });

  it("aborts the signal of a lock whose TTL passed in a stall before the run's next timer fires", async () => {
    const outcome = await a.get(DistributedLockService).withLock('stalled-run', 300, async (lock) => {
      const nextStep = sleep(200); // due after the lock's renewal (at 100 ms), before its TTL ends
      const until = performance.now() + 600;
      while (performance.now() < until) {
        // a synchronous stall past the TTL, as a long GC pause would be
      }
      await nextStep;
      return lock.signal.aborted;
    });
    expect(outcome).toEqual({ ran: true, result: true });
  });

  describe('fencing tokens', () => {
    it('gives each fenced acquisition of a key a larger token, across replicas and APIs', async () => {
      const tokens: number[] = [];
      for (let i = 0; i < 3; i++) {
        for (const app of [a, b]) {
          const locks = app.get(DistributedLockService);
          expect(await locks.acquireLock('fenced', 5_000)).toBe(true);
          tokens.push(locks.fencingToken('fenced')!);
          await locks.releaseLock('fenced');
          const outcome = await locks.withLock('fenced', 5_000, (lock) => lock.fencingToken);
          tokens.push(outcome.ran ? outcome.result! : NaN);
        }
      }
      expect(tokens).toHaveLength(12);
      expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
      expect(new Set(tokens).size).toBe(12);
    });

    // Flushes the server: only on a Redis the suite started itself, never on one named by REDIS_URL.
    (CAN_CONTROL_REDIS ? it : it.skip)(
      'keeps tokens growing after Redis lost its data, by seeding a new counter from the server clock',
      async () => {
        const locks = a.get(DistributedLockService);
        expect(await locks.acquireLock('reseeded', 5_000)).toBe(true);
        const before = locks.fencingToken('reseeded')!;
        await locks.releaseLock('reseeded');
        await redis.client().flushall(); // as a restart without persistence would
        expect(await locks.acquireLock('reseeded', 5_000)).toBe(true);
        expect(locks.fencingToken('reseeded')).toBeGreaterThan(before);
        expect(Number.isSafeInteger(locks.fencingToken('reseeded'))).toBe(true);
        await locks.releaseLock('reseeded');
      },
    );

    it('hands the running decorated job its fencing token and the occurrence it serves', async () => {
      await redis.client().del('lock:{cron:fast}:state');
      await a.get(ExactlyOnceJobs).fastCron();
      const [run] = runsOf('fastCron');
      expect(run.lock!.tick).toBe(cronTick('*/5 * * * * *', { now: run.start }));
      expect(run.fencingToken).toBe(Number(await redis.client().hget('lock:{cron:fast}:state', 'fence')));
    });
  });

  it('keeps currentLock() across the awaits of a method decorated with lockContext', async () => {
    const { atStart, afterAwait } = (await a.get(ExactlyOnceJobs).seesItsLockAfterAwaits())!;
    expect(atStart).toBeDefined();
    expect(atStart!.key).toBe('context');
    expect(afterAwait).toBe(atStart);
  });

  describe('minimum hold', () => {
    it('keeps an @Interval job locked for minHoldMs after a fast run, then frees it', async () => {
      await a.get(ExactlyOnceJobs).heldInterval();
      await sleep(100);
      await b.get(ExactlyOnceJobs).heldInterval();
      expect(runsOf('heldInterval')).toHaveLength(1);
      const pttl = await redis.client().pttl('lock:{interval:held}');
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(800);
      await sleep(pttl + 100);
      await b.get(ExactlyOnceJobs).heldInterval();
      expect(runsOf('heldInterval')).toHaveLength(2);
    });
  });

  describe('keys computed from the arguments', () => {
    it('locks per tenant: one tenant at a time, different tenants together', async () => {
      await Promise.all([
        a.get(ExactlyOnceJobs).perTenant('acme'),
        b.get(ExactlyOnceJobs).perTenant('acme'),
        b.get(ExactlyOnceJobs).perTenant('globex'),
      ]);
      expect(
        runsOf('perTenant')
          .map((run) => run.arg)
          .sort(),
      ).toEqual(['acme', 'globex']);
    });

    it('rejects a call whose computed key is empty with a TypeError, without running it', async () => {
      await expect(a.get(ExactlyOnceJobs).named('')).rejects.toThrow(TypeError);
      await expect(a.get(ExactlyOnceJobs).named('')).rejects.toThrow(
        'the key computed by @DistributedLock must be a non-empty string that does not start with "}" (in Redis Cluster the lock and its state would hash to different slots), got "".',
      );
      expect(runsOf('named')).toHaveLength(0);
    });
  });
});

describe('acquire with retries', () => {
  let redis: TestRedis;
  let app: INestApplicationContext;
  let locks: DistributedLockService;

  beforeAll(async () => {
    redis = await startTestRedis();
    app = await createReplica([DistributedLockModule.forRoot({ url: redis.url })]);
    locks = app.get(DistributedLockService);
  });
  afterAll(async () => {
    await app.close();
    await redis.dispose();
  });

  const holdElsewhere = (key: string, ms: number) => redis.client().set(`lock:{${key}}`, 'another-holder', 'PX', ms);

  it('waits for a lock held elsewhere and takes it soon after it frees', async () => {
    await holdElsewhere('retry', 400);
    const started = Date.now();
    const lock = await locks.acquire('retry', 5_000, { waitMs: 3_000, retryDelayMs: 20, maxRetryDelayMs: 100 });
    const waited = Date.now() - started;
    expect(lock?.isHeld).toBe(true);
    expect(waited).toBeGreaterThanOrEqual(350);
    expect(waited).toBeLessThan(1_500);
    await lock!.release();
  });

  it('reads a reply that arrived during a stall before deciding Redis was too slow', async () => {
    const tick = Math.floor(Date.now() / 1000) * 1000; // an occurrence the Redis clock can judge
    const served = await locks.acquire('stalled', 5_000, { tick });
    await served!.release();

    // The acquisition is on the wire; then this process stalls past acquireTimeoutMs (1 s), as in a GC pause.
    const pending = locks.acquire('stalled', 5_000, { tick });
    const until = Date.now() + 1_500;
    while (Date.now() < until) {
      // stalled
    }
    // Redis answered at once that the tick was served: that answer, not the fail mode, decides.
    expect(await pending).toBeUndefined();
  });

  it('gives up at its deadline', async () => {
    await holdElsewhere('deadline', 10_000);
    const started = Date.now();
    expect(await locks.acquire('deadline', 5_000, { waitMs: 300 })).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('stops waiting when its signal aborts, rejecting with the reason', async () => {
    await holdElsewhere('cancel', 10_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('shutting down')), 200);
    const started = Date.now();
    await expect(locks.acquire('cancel', 5_000, { waitMs: 10_000, signal: controller.signal })).rejects.toThrow(
      'shutting down',
    );
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it.each([
    [{ waitMs: -1 }, 'waitMs must be'],
    [{ minHoldMs: 1.5 }, 'minHoldMs must be'],
    [{ retryDelayMs: 0 }, 'retryDelayMs must be'],
    [{ signal: 'stop' }, 'signal must be an AbortSignal'],
    [{ tick: 'tomorrow' }, 'tick must be a Date or an integer'],
  ])('rejects the bad option %j with a TypeError', async (options, message) => {
    await expect(locks.acquire('options', 1_000, options as never)).rejects.toThrow(TypeError);
    await expect(locks.acquire('options', 1_000, options as never)).rejects.toThrow(message);
  });
});
