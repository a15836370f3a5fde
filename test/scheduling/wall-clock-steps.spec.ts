import { performance } from 'node:perf_hooks';
import { LockEngine } from '../../src';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';
import { fakeWallClock } from '../support/wall-clock';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const HOUR_MS = 3_600_000;
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

/** Durations run on the monotonic clock: a step of the wall clock (NTP, a VM resumed) changes none of them. */
describeWithOwnRedis('wall-clock steps', () => {
  let redis: TestRedis;
  let engine: LockEngine;
  let clock: ReturnType<typeof fakeWallClock> | undefined;

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  beforeEach(async () => {
    engine = new LockEngine({ url: redis.url, acquireTimeoutMs: 500, failMode: 'closed', logger: false });
    await engine.waitUntilConnected();
  });
  afterEach(async () => {
    clock?.restore();
    clock = undefined;
    redis.resume();
    await engine.close();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it.each([
    ['back', -HOUR_MS],
    ['forward', HOUR_MS],
  ])('decides an acquisition within acquireTimeoutMs when the wall clock steps an hour %s', async (_case, stepMs) => {
    redis.pause();
    clock = fakeWallClock();
    const started = performance.now();
    const decided = engine.acquireLock('steps:deadline', 10_000);
    clock.set(Date.now() + stepMs);
    const outcome = await Promise.race([decided, sleep(5_000).then(() => 'still waiting after 5 s')]);
    const tookMs = performance.now() - started;

    expect(outcome).toBe(false); // fail-closed: Redis did not answer in time
    expect(tookMs).toBeGreaterThanOrEqual(450);
    expect(tookMs).toBeLessThan(2_000);
  });

  it('sees its lock expire by its TTL while cut off from Redis, although its wall clock stepped back', async () => {
    const lock = await engine.acquire('steps:holder', 800);
    expect(lock?.isHeld).toBe(true);
    redis.pause(); // partitioned: no extension can reach Redis
    clock = fakeWallClock();
    clock.set(Date.now() - HOUR_MS);
    await sleep(1_000);

    expect(lock!.isHeld).toBe(false);
    expect(engine.holdsLock('steps:holder')).toBe(false);
    expect(() => lock!.throwIfLost()).toThrow('Lock "steps:holder" was lost while held');
  });
});
