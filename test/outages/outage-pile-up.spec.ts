import { performance } from 'node:perf_hooks';
import { type INestApplicationContext, Injectable } from '@nestjs/common';
import { DistributedLock, DistributedLockModule, DistributedLockService, type FailMode } from '../../src';
import { createReplica } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';
import { lockKeyOf } from '../../src/core/keys';

/** These tests kill, pause or cut off Redis: only a Redis the suite started itself, never one named by REDIS_URL. */
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ACQUIRE_TIMEOUT_MS = 300;
/** A burst made while Redis is down must settle within about acquireTimeoutMs; generous for a noisy machine. */
const BURST_BOUND_MS = 1_500;
const BURST = 500;
/** How long ioredis may take to notice a dead socket or finish one refused connect attempt. */
const SETTLE_BOUND_MS = 2_000;
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
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
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
  /** Listeners on the client, per event: a listener added per lock call would show here, on whatever event. */
  const listeners = () =>
    Object.fromEntries(locks.client.eventNames().map((event) => [String(event), locks.client.listenerCount(event)]));

  /**
   * Reads `observe` once ioredis is in `status` with no work of its own under way. During each
   * connect attempt it holds a 'ready' and a 'close' listener of its own (ioredis Redis.js
   * `_connect`), and it drops the commands in flight on a dead socket only once the socket's
   * 'close' event has run (redis/event_handler.js `closeHandler`); that event can come a whole
   * event-loop turn after calls made as Redis dies have already settled.
   */
  async function whenSettled<T>(status: 'ready' | 'reconnecting', observe: () => T): Promise<T> {
    const started = performance.now();
    while (locks.client.status !== status) {
      if (performance.now() - started > SETTLE_BOUND_MS) {
        throw new Error(`ioredis still ${locks.client.status} after ${SETTLE_BOUND_MS} ms; expected ${status}`);
      }
      await new Promise((resolve) => setImmediate(resolve)); // let the event loop run the socket's close callback
    }
    return observe(); // in the same tick as the check: no connect attempt can start in between
  }
  const settledOutage = () => whenSettled('reconnecting', () => ({ queues: queues(), listeners: listeners() }));

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
    const listenersBefore = await whenSettled('ready', listeners);
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
    // Read once ioredis has noticed the outage: before that its queue still holds commands sent before the kill.
    expect(await settledOutage()).toEqual({ queues: { offline: 0, pending: 0 }, listeners: listenersBefore });

    const released = await timed(() => Promise.all(range(BURST).map((i) => locks.releaseLock(`pile-up:manual:${i}`))));
    expect(released.ms).toBeLessThan(BURST_BOUND_MS);
    expect(await settledOutage()).toEqual({ queues: { offline: 0, pending: 0 }, listeners: listenersBefore });
  });

  it(`keeps both client queues empty through a longer outage: 4 bursts of ${BURST} decorated ticks and manual locks`, async () => {
    const job = app.get(ItemJob);
    const { listeners: listenersBefore } = await settledOutage();
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
      // Checked after every burst, not only at the end: a count that grows with the calls made is a pile-up.
      expect(await settledOutage()).toEqual({ queues: { offline: 0, pending: 0 }, listeners: listenersBefore });
      await Promise.all(range(BURST).map((i) => locks.releaseLock(`pile-up:burst:${burst}:${i}`)));
      await sleep(500); // reconnection attempts fail in between
    }
    expect(await settledOutage()).toEqual({ queues: { offline: 0, pending: 0 }, listeners: listenersBefore });
    expect(locks.isConnected()).toBe(false);
  });

  it('replays nothing once Redis is back: the restarted Redis holds no key from the outage', async () => {
    await redis.start();
    expect(await locks.waitUntilConnected(8_000)).toBe(true);
    await sleep(500); // time for anything queued to have been sent
    const observer = redis.client();
    // The replica's job declarations are sent again on reconnection, by design; nothing else is.
    expect((await observer.keys('*')).filter((key) => !['jobs', 'jobs:first-declared'].includes(key))).toEqual([]);

    expect(await locks.acquireLock('pile-up:after', 10_000)).toBe(true);
    expect(await observer.exists(lockKeyOf('', 'pile-up:after'))).toBe(1);
    await locks.releaseLock('pile-up:after');
  });
});
