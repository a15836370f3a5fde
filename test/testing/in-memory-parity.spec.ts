import Redis from 'ioredis';
import { LockEngine } from '../../src/core';
import { InMemoryLockStore } from '../../src/testing';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Two replicas over one store, and how to pause a job in that store. */
interface Fleet {
  a: LockEngine;
  b: LockEngine;
  pause(job: string, key: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The same scenario, step by step, against Redis and against the in-memory store: every
 * decision must be the same. What a step saw is recorded as a word or a number.
 */
async function scenario({ a, b, pause }: Fleet): Promise<unknown[]> {
  const seen: unknown[] = [];
  const now = Date.now();
  const tick = now - (now % 1000);
  // Margins of 600 ms or more either side of each expiry: a busy machine delays the steps.
  seen.push(await a.acquireLock('plain', 500), await b.acquireLock('plain', 500));
  await b.releaseLock('plain'); // not the owner: nothing happens
  seen.push(await b.acquireLock('plain', 500));
  seen.push(await a.extendLock('plain', 1_500), await b.extendLock('plain', 1_500));
  await sleep(900); // past the first TTL, within the extension
  seen.push(await b.acquireLock('plain', 500));
  await sleep(1_200);
  seen.push(await b.acquireLock('plain', 500)); // expired now
  const job = (locks: LockEngine, at: number, name = 'Jobs.report') =>
    locks.runJob(name, 'report', 1_000, () => 'ran', { tick: at }).then((result) => result ?? 'skipped');
  seen.push(await job(a, tick), await job(b, tick), await job(b, tick - 1000), await job(b, tick + 1000));
  seen.push(await job(a, tick, 'Other.report')); // another job's ticks are its own
  seen.push(await job(a, now + 3_600_000)); // far ahead of the store's clock: refused
  const fenced = async (locks: LockEngine) => {
    const lock = await locks.acquire('fenced', 1_000, { fencing: true });
    await lock?.release();
    return lock?.fencingToken;
  };
  const tokens = [await fenced(a), await fenced(b), await fenced(a)];
  seen.push(tokens[0]! < tokens[1]! && tokens[1]! < tokens[2]! ? 'increasing' : tokens);
  await a.withLock('held-on', 5_000, () => undefined, { minHoldMs: 1_000 });
  seen.push(await b.acquireLock('held-on', 1_000));
  await sleep(1_100);
  seen.push(await b.acquireLock('held-on', 1_000));
  await pause('Jobs.paused', 'paused');
  seen.push(
    await a.runJob('Jobs.paused', 'paused', 1_000, () => 'ran').then((result) => result ?? 'skipped'),
    await a.runJob('Jobs.other', 'paused', 1_000, () => 'ran'),
  );
  return seen;
}

describe('the in-memory store decides as Redis does', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('gives the same answers to the same scenario', async () => {
    const onRedis = async (): Promise<Fleet> => {
      const options = { url: redis.url, logger: false as const, keyPrefix: 'parity:' };
      const admin = new Redis(redis.url);
      const [a, b] = [new LockEngine(options), new LockEngine(options)];
      return {
        a,
        b,
        pause: async (job, key) => void (await admin.hset(`parity:lock:{${key}}:paused`, job, '{}')),
        close: async () => {
          await Promise.all([a.close(), b.close()]);
          admin.disconnect();
        },
      };
    };
    const inMemory = (): Fleet => {
      const store = new InMemoryLockStore();
      const [a, b] = [new LockEngine({ logger: false }, store), new LockEngine({ logger: false }, store)];
      return {
        a,
        b,
        pause: (job) => Promise.resolve(store.pauseJob(job)),
        close: () => Promise.all([a.close(), b.close()]).then(() => undefined),
      };
    };
    const results: unknown[][] = [];
    for (const fleet of [await onRedis(), inMemory()]) {
      results.push(await scenario(fleet));
      await fleet.close();
    }
    expect(results[0]).toEqual([
      true, false, false, true, false, false, true,
      'ran', 'skipped', 'skipped', 'ran', 'ran', 'skipped',
      'increasing', false, true, 'skipped', 'ran',
    ]); // prettier-ignore
    expect(results[1]).toEqual(results[0]);
  });
});
