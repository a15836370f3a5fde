import { runInThisContext } from 'node:vm';
import { type INestApplicationContext, Injectable } from '@nestjs/common';
import { DistributedLock, DistributedLockModule, DistributedLockService, type FailMode } from '../../src';
import { createReplica } from '../support/create-replica';
import { CAN_CONTROL_REDIS, freePort, startTestRedis, type TestRedis } from '../support/redis-server';
import { lockKeyOf } from '../../src/core/keys';

/** These tests kill, pause or cut off Redis: only a Redis the suite started itself, never one named by REDIS_URL. */
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ACQUIRE_TIMEOUT_MS = 300;
/** "Within about acquireTimeoutMs", with a generous margin: the machine running the tests is noisy. */
const DECISION_BOUND_MS = 1_500;
const JOB_KEY = 'fail-mode:job';

/** A guarded job that counts its runs and notes when its body started. */
@Injectable()
class FailModeJob {
  runs = 0;
  workMs = 0;
  startedAt: number | undefined;

  @DistributedLock(JOB_KEY, 10_000)
  async run(): Promise<'ran'> {
    this.runs++;
    this.startedAt = Date.now();
    if (this.workMs > 0) await sleep(this.workMs);
    return 'ran';
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

/**
 * Collects the process's unhandled rejections during the enclosing describe. Jest hands each test
 * file a copy of `process` whose listeners never fire; Node emits on the real one, reached here.
 */
function recordUnhandledRejections(): unknown[] {
  const realProcess = runInThisContext('process') as NodeJS.Process;
  const seen: unknown[] = [];
  const record = (reason: unknown) => seen.push(reason);
  beforeAll(() => realProcess.on('unhandledRejection', record));
  afterAll(() => realProcess.off('unhandledRejection', record));
  return seen;
}

/** Polls `check` until it holds or `withinMs` passes; resolves whether it held. */
async function eventually(check: () => Promise<boolean>, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

describe.each<{ mode: string; failMode: FailMode | undefined; runsWithoutRedis: boolean }>([
  { mode: 'fail-open (the default)', failMode: undefined, runsWithoutRedis: true },
  { mode: 'fail-closed', failMode: 'closed', runsWithoutRedis: false },
])('$mode', ({ failMode, runsWithoutRedis }) => {
  const unhandled = recordUnhandledRejections();
  const apps: INestApplicationContext[] = [];
  const verb = runsWithoutRedis ? 'runs' : 'skips';

  afterEach(() => expect(unhandled).toEqual([]));
  afterAll(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  /** One replica whose module is configured with `forRoot({ host, port, acquireTimeoutMs, failMode })`. */
  async function replica(port: number): Promise<INestApplicationContext> {
    const app = await createReplica(
      [
        DistributedLockModule.forRoot({
          host: '127.0.0.1',
          port,
          acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
          ...(failMode !== undefined && { failMode }),
        }),
      ],
      [FailModeJob],
    );
    apps.push(app);
    return app;
  }

  describe('when Redis was never up (nothing listens on its port)', () => {
    let app: INestApplicationContext;
    let bootMs: number;

    beforeAll(async () => {
      const port = await freePort();
      ({ value: app, ms: bootMs } = await timed(() => replica(port)));
    });

    it('boots anyway, after waiting about acquireTimeoutMs for the connection', () => {
      expect(app.get(DistributedLockService).isConnected()).toBe(false);
      expect(bootMs).toBeLessThan(DECISION_BOUND_MS + 1_500); // Nest's own boot on top
    });

    it(`${verb} the decorated job, deciding within about acquireTimeoutMs`, async () => {
      const job = app.get(FailModeJob);
      const { value, ms } = await timed(() => job.run());
      expect(value).toBe(runsWithoutRedis ? 'ran' : undefined);
      expect(job.runs).toBe(runsWithoutRedis ? 1 : 0);
      expect(ms).toBeLessThan(DECISION_BOUND_MS);
    });

    it(`resolves acquireLock ${runsWithoutRedis} within about acquireTimeoutMs; releaseLock resolves`, async () => {
      const locks = app.get(DistributedLockService);
      const { value, ms } = await timed(() => locks.acquireLock('fail-mode:manual', 10_000));
      expect(value).toBe(runsWithoutRedis);
      expect(ms).toBeLessThan(DECISION_BOUND_MS);
      expect(locks.holdsLock('fail-mode:manual')).toBe(runsWithoutRedis);

      const release = await timed(() => locks.releaseLock('fail-mode:manual'));
      expect(release.value).toBeUndefined();
      expect(release.ms).toBeLessThan(DECISION_BOUND_MS);
      expect(locks.holdsLock('fail-mode:manual')).toBe(false);
    });

    it(`${verb} a withLock callback`, async () => {
      const outcome = await app.get(DistributedLockService).withLock('fail-mode:with-lock', 10_000, () => 42);
      expect(outcome).toEqual(runsWithoutRedis ? { ran: true, result: 42 } : { ran: false, reason: 'unavailable' });
    });

    it(`${runsWithoutRedis ? 'hands out a handle marked as taken without Redis' : 'hands out no handle'} from acquire()`, async () => {
      const lock = await app.get(DistributedLockService).acquire('fail-mode:handle', 10_000);
      if (runsWithoutRedis) {
        expect(lock).toMatchObject({ withoutRedis: true, fencingToken: undefined, isHeld: true });
        await lock!.release();
        expect(lock!.isHeld).toBe(false);
      } else {
        expect(lock).toBeUndefined();
      }
    });
  });

  describeWithOwnRedis('when Redis is killed (SIGKILL) and started again', () => {
    let redis: TestRedis;
    let a: INestApplicationContext;
    let b: INestApplicationContext;

    beforeAll(async () => {
      redis = await startTestRedis();
      [a, b] = await Promise.all([replica(redis.port), replica(redis.port)]);
    });
    afterAll(async () => {
      await redis.dispose();
    });

    it('lets a decorated job that holds the lock finish; its release resolves and nothing rejects unhandled', async () => {
      const job = a.get(FailModeJob);
      const locks = a.get(DistributedLockService);
      job.workMs = 600;
      const running = job.run();
      await sleep(150);
      expect(await redis.client().exists(lockKeyOf('', JOB_KEY))).toBe(1);

      await redis.kill();
      const { value, ms } = await timed(() => running);

      expect(value).toBe('ran');
      expect(ms).toBeLessThan(600 + DECISION_BOUND_MS);
      expect(locks.holdsLock(JOB_KEY)).toBe(false);
      await sleep(300); // room for a late rejection to surface before afterEach checks
      expect(unhandled).toEqual([]);
      job.workMs = 0;
    });

    it(`${verb} ticks while Redis is down: ${runsWithoutRedis ? 'every replica runs' : 'no replica runs'}`, async () => {
      a.get(FailModeJob).workMs = b.get(FailModeJob).workMs = 100;
      const { value, ms } = await timed(() => Promise.all([a.get(FailModeJob).run(), b.get(FailModeJob).run()]));
      expect(value).toEqual(runsWithoutRedis ? ['ran', 'ran'] : [undefined, undefined]);
      expect(ms).toBeLessThan(100 + DECISION_BOUND_MS);
      a.get(FailModeJob).workMs = b.get(FailModeJob).workMs = 0;
    });

    it('reconnects after a restart and runs each tick on exactly one of two replicas again', async () => {
      await redis.start();
      const [locksA, locksB] = [a.get(DistributedLockService), b.get(DistributedLockService)];
      expect(await Promise.all([locksA.waitUntilConnected(8_000), locksB.waitUntilConnected(8_000)])).toEqual([
        true,
        true,
      ]);

      a.get(FailModeJob).workMs = b.get(FailModeJob).workMs = 150;
      for (let tick = 0; tick < 3; tick++) {
        const before = a.get(FailModeJob).runs + b.get(FailModeJob).runs;
        const results = await Promise.all([a.get(FailModeJob).run(), b.get(FailModeJob).run()]);
        expect(results.sort()).toEqual(['ran', undefined]);
        expect(a.get(FailModeJob).runs + b.get(FailModeJob).runs - before).toBe(1);
      }
      a.get(FailModeJob).workMs = b.get(FailModeJob).workMs = 0;

      const manual = await Promise.all([
        locksA.acquireLock('fail-mode:restart', 10_000),
        locksB.acquireLock('fail-mode:restart', 10_000),
      ]);
      expect(manual.sort()).toEqual([false, true]);
      expect(await redis.client().exists(lockKeyOf('', 'fail-mode:restart'))).toBe(1);
      await Promise.all([locksA.releaseLock('fail-mode:restart'), locksB.releaseLock('fail-mode:restart')]);
      expect(await redis.client().exists(lockKeyOf('', 'fail-mode:restart'))).toBe(0);
    });

    it('resolves the release of a manual lock whose Redis was killed, within about acquireTimeoutMs', async () => {
      const locks = a.get(DistributedLockService);
      expect(await locks.acquireLock('fail-mode:killed', 10_000)).toBe(true);
      await redis.kill();

      const { value, ms } = await timed(() => locks.releaseLock('fail-mode:killed'));

      expect(value).toBeUndefined();
      expect(ms).toBeLessThan(DECISION_BOUND_MS);
      expect(locks.holdsLock('fail-mode:killed')).toBe(false);
      await sleep(300);
      expect(unhandled).toEqual([]);
    });
  });

  describeWithOwnRedis('when Redis is paused (SIGSTOP): connected, but slower than acquireTimeoutMs', () => {
    let redis: TestRedis;
    let a: INestApplicationContext;
    let b: INestApplicationContext;

    beforeAll(async () => {
      redis = await startTestRedis();
      [a, b] = await Promise.all([replica(redis.port), replica(redis.port)]);
    });
    afterAll(async () => {
      await redis.dispose();
    });

    /** Runs `work` while Redis is paused, resuming it even if `work` throws. */
    async function whilePaused<T>(work: () => Promise<T>): Promise<T> {
      redis.pause();
      try {
        return await work();
      } finally {
        redis.resume();
      }
    }

    it(`decides the decorated job within about acquireTimeoutMs and ${verb} it`, async () => {
      const job = a.get(FailModeJob);
      job.startedAt = undefined;
      const started = Date.now();
      const { value, ms } = await whilePaused(() => timed(() => job.run()));

      expect(value).toBe(runsWithoutRedis ? 'ran' : undefined);
      if (runsWithoutRedis) {
        expect(job.startedAt! - started).toBeLessThan(DECISION_BOUND_MS);
        expect(ms).toBeLessThan(2 * DECISION_BOUND_MS); // the release waits for Redis as long again
      } else {
        expect(job.startedAt).toBeUndefined();
        expect(ms).toBeLessThan(DECISION_BOUND_MS);
      }
    });

    it(`resolves acquireLock ${runsWithoutRedis} within about acquireTimeoutMs; releaseLock resolves as fast`, async () => {
      const locks = a.get(DistributedLockService);
      const [acquired, released] = await whilePaused(async () => [
        await timed(() => locks.acquireLock('fail-mode:paused', 10_000)),
        await timed(() => locks.releaseLock('fail-mode:paused')),
      ]);
      expect(acquired.value).toBe(runsWithoutRedis);
      expect(acquired.ms).toBeLessThan(DECISION_BOUND_MS);
      expect(released.value).toBeUndefined();
      expect(released.ms).toBeLessThan(DECISION_BOUND_MS);
    });

    it('leaves no lock behind in Redis once it answers the acquisition that came too late', async () => {
      const locks = a.get(DistributedLockService);
      const observer = redis.client();
      await observer.ping();
      const lock = lockKeyOf('', 'fail-mode:late');

      await whilePaused(async () => {
        await locks.acquireLock('fail-mode:late', 10_000);
        await locks.releaseLock('fail-mode:late');
      });

      // The lock's TTL is 10 s: gone well before means the late acquisition was undone.
      expect(await eventually(async () => (await observer.exists(lock)) === 0, 3_000)).toBe(true);
    });

    it('dedups again once Redis is resumed: exactly one of two replicas runs', async () => {
      a.get(FailModeJob).workMs = b.get(FailModeJob).workMs = 150;
      const results = await Promise.all([a.get(FailModeJob).run(), b.get(FailModeJob).run()]);
      expect(results.sort()).toEqual(['ran', undefined]);
      a.get(FailModeJob).workMs = b.get(FailModeJob).workMs = 0;
    });
  });
});
