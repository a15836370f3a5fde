import { type INestApplicationContext, Injectable } from '@nestjs/common';
import { DistributedLock, DistributedLockModule, DistributedLockService, type FailMode } from '../../src';
import { createReplica } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

/** These tests kill, pause or cut off Redis: only a Redis the suite started itself, never one named by REDIS_URL. */
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ACQUIRE_TIMEOUT_MS = 300;
/** A burst made while Redis is down must settle within about acquireTimeoutMs; generous for a noisy machine. */
const BURST_BOUND_MS = 1_500;
const BURST = 500;
const range = (count: number) => Array.from({ length: count }, (_, index) => index);

/** A guarded job with one lock per item, so concurrent calls do not share a key. */
@Injectable()
class ItemJob {
  runs = 0;

  @DistributedLock({ key: (item: number) => `pile-up:item:${item}`, ttlMs: 60_000 })
  async run(item: number): Promise<number> {
    this.runs++;
    return item;
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

describeWithOwnRedis.each<[string, FailMode, boolean]>([
  ['fail-open', 'open', true],
  ['fail-closed', 'closed', false],
])('%s: no pile-up while Redis is killed', (_mode, failMode, grants) => {
  let redis: TestRedis;
  let app: INestApplicationContext;
  let locks: DistributedLockService;

  /** What ioredis holds in memory: commands waiting for a connection, and commands waiting for a reply. */
  const queues = () => {
    const client = locks.client as unknown as { offlineQueue: { length: number }; commandQueue: { length: number } };
    return { offline: client.offlineQueue.length, pending: client.commandQueue.length };
  };
  const listeners = () => ['ready', 'error', 'close', 'end'].map((event) => locks.client.listenerCount(event));

  beforeAll(async () => {
    redis = await startTestRedis();
    app = await createReplica(
      [
        DistributedLockModule.forRoot({
          host: '127.0.0.1',
          port: redis.port,
          acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
          failMode,
          logger: false,
        }),
      ],
      [ItemJob],
    );
    locks = app.get(DistributedLockService);
  });
  afterAll(async () => {
    await app.close();
    await redis.dispose();
  });

  it(`resolves ${BURST} acquireLock and ${BURST} withLock calls made as Redis dies, within about acquireTimeoutMs`, async () => {
    expect(locks.isConnected()).toBe(true);
    const listenersBefore = listeners();
    await redis.kill();

    const { value, ms } = await timed(() =>
      Promise.all([
        Promise.all(range(BURST).map((i) => locks.acquireLock(`pile-up:manual:${i}`, 60_000))),
        Promise.all(range(BURST).map((i) => locks.withLock(`pile-up:with:${i}`, 60_000, () => i))),
      ]),
    );

    const [acquired, outcomes] = value;
    expect(acquired.filter((granted) => granted === grants)).toHaveLength(BURST);
    expect(outcomes.filter((outcome) => outcome.ran)).toHaveLength(grants ? BURST : 0);
    expect(ms).toBeLessThan(BURST_BOUND_MS);
    expect(queues()).toEqual({ offline: 0, pending: 0 });
    expect(listeners()).toEqual(listenersBefore);

    const released = await timed(() => Promise.all(range(BURST).map((i) => locks.releaseLock(`pile-up:manual:${i}`))));
    expect(released.ms).toBeLessThan(BURST_BOUND_MS);
    expect(queues()).toEqual({ offline: 0, pending: 0 });
  });

  it(`keeps both client queues empty through a longer outage: 4 bursts of ${BURST} decorated ticks and manual locks`, async () => {
    const job = app.get(ItemJob);
    const listenersBefore = listeners();
    for (let burst = 0; burst < 4; burst++) {
      const runsBefore = job.runs;
      const { value, ms } = await timed(() =>
        Promise.all([
          Promise.all(range(BURST).map((i) => job.run(i))),
          Promise.all(range(BURST).map((i) => locks.acquireLock(`pile-up:burst:${burst}:${i}`, 60_000))),
        ]),
      );
      const [results, acquired] = value;
      expect(job.runs - runsBefore).toBe(grants ? BURST : 0);
      expect(results.filter((result) => result !== undefined)).toHaveLength(grants ? BURST : 0);
      expect(acquired.filter((granted) => granted === grants)).toHaveLength(BURST);
      expect(ms).toBeLessThan(BURST_BOUND_MS);
      expect(queues()).toEqual({ offline: 0, pending: 0 });
      await Promise.all(range(BURST).map((i) => locks.releaseLock(`pile-up:burst:${burst}:${i}`)));
      await sleep(500); // reconnection attempts fail in between
    }
    expect(queues()).toEqual({ offline: 0, pending: 0 });
    expect(listeners()).toEqual(listenersBefore);
    expect(locks.isConnected()).toBe(false);
  });

  it('replays nothing once Redis is back: the restarted Redis holds no key from the outage', async () => {
    await redis.start();
    expect(await locks.waitUntilConnected(8_000)).toBe(true);
    await sleep(500); // time for anything queued to have been sent
    const observer = redis.client();
    expect(await observer.keys('*')).toEqual([]);

    expect(await locks.acquireLock('pile-up:after', 10_000)).toBe(true);
    expect(await observer.exists(locks.keysFor('pile-up:after').lock)).toBe(1);
    await locks.releaseLock('pile-up:after');
  });
});
