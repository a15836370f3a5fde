import Redis from 'ioredis';
import {
  ComputedLockNameError,
  CronSchedule,
  type DistributedLockOptions,
  JobDefinition,
  LockEngine,
} from '../../src/core';
import type { LockStore } from '../../src/core/lock-store';
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
 * decision must be the same. What a step saw is recorded as a word or a number. Each timed step
 * keeps a margin of a second or more either side of the expiry it observes: a busy machine
 * delays the steps, and a delay must not change an answer.
 */
async function scenario({ a, b, pause }: Fleet): Promise<unknown[]> {
  const seen: unknown[] = [];
  const now = Date.now();
  const tick = now - (now % 1000);
  seen.push(await a.acquireLock('plain', 1_000), await b.acquireLock('plain', 1_000));
  await b.releaseLock('plain'); // not the owner: nothing happens
  seen.push(await b.acquireLock('plain', 1_000));
  seen.push(await a.extendLock('plain', 4_000), await b.extendLock('plain', 4_000));
  await sleep(2_000); // past the first TTL, within the extension
  seen.push(await b.acquireLock('plain', 1_000), a.holdsLock('plain'));
  await sleep(3_000);
  seen.push(a.holdsLock('plain'), await b.acquireLock('plain', 1_000)); // expired now
  const job = (locks: LockEngine, at: number, name = 'Jobs.report') =>
    locks.runJob(name, 'report', 1_000, () => 'ran', { tick: at }).then((result) => result ?? 'skipped');
  seen.push(await job(a, tick), await job(b, tick), await job(b, tick - 1000), await job(b, tick + 1000));
  seen.push(await job(a, tick, 'Other.report')); // another job's ticks are its own
  seen.push(await job(a, now + 3_600_000)); // far ahead of the store's clock: refused
  const tokens = [await fenced(a), await fenced(b), await fenced(a)];
  seen.push(tokens[0]! < tokens[1]! && tokens[1]! < tokens[2]! ? 'increasing' : tokens);
  await a.withLock('held-on', 5_000, () => undefined, { minHoldMs: 3_000 });
  seen.push(await b.acquireLock('held-on', 1_000));
  await sleep(3_200);
  seen.push(await b.acquireLock('held-on', 1_000));
  await pause('Jobs.paused', 'paused');
  seen.push(
    await a.runJob('Jobs.paused', 'paused', 1_000, () => 'ran').then((result) => result ?? 'skipped'),
    await a.runJob('Jobs.other', 'paused', 1_000, () => 'ran'),
  );
  return seen;
}

/** A fenced acquisition's token, released at once. */
async function fenced(locks: LockEngine, key = 'fenced'): Promise<number | undefined> {
  const lock = await locks.acquire(key, 1_000, { fencing: true });
  await lock?.release();
  return lock?.fencingToken;
}

/**
 * What outlives a lock name's state, once it expired: fencing tokens keep growing, and an
 * occurrence served before is refused as too old to judge, while a new one runs.
 */
async function afterStateExpiry({ a, b }: Fleet): Promise<unknown[]> {
  const seen: unknown[] = [];
  const tick = Date.now(); // a second's rounding would leave it too close to the 1 s retention
  const job = (locks: LockEngine, at: number) =>
    locks.runJob('Jobs.expiring', 'expiring', 500, () => 'ran', { tick: at }).then((result) => result ?? 'skipped');
  const before = await fenced(a, 'expiring');
  seen.push(await job(a, tick), await job(b, tick));
  // The state lives stateRetentionMs + tickAheadLimitMs (2 s) after its last use.
  await sleep(3_200);
  const after = await fenced(b, 'expiring');
  seen.push(after! > before! ? 'still increasing' : [before, after]);
  seen.push(await job(b, tick)); // older than stateRetentionMs now: refused, not run again
  seen.push(await job(b, Date.now()));
  return seen;
}

/**
 * A job with a policy claims its occurrence in the ledger (CLAIM_OCCURRENCE): once across
 * replicas, skipped (and so never caught up) while the lock is held, paused like any job.
 */
async function withPolicy({ a, b, pause }: Fleet): Promise<unknown[]> {
  const seen: unknown[] = [];
  const daily = (name: string, key: string) =>
    new JobDefinition({
      name,
      key,
      ttlMs: 2_000,
      schedule: () => new CronSchedule('0 0 0 * * *', { timeZone: 'UTC' }),
      policies: { catchUp: { windowMs: 3_600_000, runs: 'latest' } },
    });
  const run = (locks: LockEngine, job: JobDefinition) =>
    locks.runDefinedJob(job, () => 'ran').then((result) => result ?? 'skipped');
  const nightly = daily('Jobs.nightly', 'nightly');
  seen.push(await run(a, nightly), await run(b, nightly), await run(a, nightly));
  const busy = daily('Jobs.busy', 'busy');
  seen.push(await b.acquireLock('busy', 5_000)); // an earlier run still holds the lock
  seen.push(await run(a, busy));
  await b.releaseLock('busy');
  seen.push(await run(a, busy)); // skipped for the overlap: this occurrence is not run late
  const paused = daily('Jobs.pausedPolicy', 'paused-policy');
  await pause('Jobs.pausedPolicy', 'paused-policy');
  seen.push(await run(a, paused), await run(b, paused));
  return seen;
}

describe('the in-memory store decides as Redis does', () => {
  jest.setTimeout(60_000);
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  const onRedis = async (prefix: string, extra: DistributedLockOptions = {}): Promise<Fleet> => {
    const options = { url: redis.url, logger: false as const, keyPrefix: prefix, ...extra };
    const admin = new Redis(redis.url);
    const [a, b] = [new LockEngine(options), new LockEngine(options)];
    return {
      a,
      b,
      pause: async (job, key) => void (await admin.hset(`${prefix}lock:{${key}}:paused`, job, '{}')),
      close: async () => {
        await Promise.all([a.close(), b.close()]);
        admin.disconnect();
      },
    };
  };
  const inMemory = (extra: DistributedLockOptions = {}): Fleet => {
    const store = new InMemoryLockStore();
    const options = { logger: false as const, ...extra };
    const [a, b] = [new LockEngine(options, store), new LockEngine(options, store)];
    return {
      a,
      b,
      pause: (job) => Promise.resolve(store.pauseJob(job)),
      close: () => Promise.all([a.close(), b.close()]).then(() => undefined),
    };
  };
  const onBoth = async (run: (fleet: Fleet) => Promise<unknown[]>, extra: DistributedLockOptions = {}) => {
    const results: unknown[][] = [];
    for (const fleet of [await onRedis(`parity-${results.length}-${Date.now()}:`, extra), inMemory(extra)]) {
      try {
        results.push(await run(fleet));
      } finally {
        await fleet.close();
      }
    }
    return results;
  };

  it('gives the same answers to the same scenario', async () => {
    const [redisSaw, memorySaw] = await onBoth(scenario);
    expect(redisSaw).toEqual([
      true, false, false, true, false, false, true, false, true,
      'ran', 'skipped', 'skipped', 'ran', 'ran', 'skipped',
      'increasing', false, true, 'skipped', 'ran',
    ]); // prettier-ignore
    expect(memorySaw).toEqual(redisSaw);
  });

  it('claims an occurrence of a job with a policy as Redis does: once, skipped while held, paused', async () => {
    const [redisSaw, memorySaw] = await onBoth(withPolicy);
    expect(redisSaw).toEqual(['ran', 'skipped', 'skipped', true, 'skipped', 'skipped', 'skipped', 'skipped']);
    expect(memorySaw).toEqual(redisSaw);
  });

  it('counts failed occurrences in a row and pauses at the limit as Redis does (pauseAfterFailures)', async () => {
    const ends: [number, boolean][] = [[1_000, true], [2_000, true], [2_000, true], [1_500, false], [3_000, false],
      [2_500, true], [4_000, true], [5_000, true], [6_000, true], [7_000, true]]; // prettier-ignore
    const count = (store: LockStore) => async () => {
      const replies: unknown[] = [];
      for (const [tick, failed] of ends) {
        const end = { stateKey: 'p:lock:{x}:state', pauseKey: 'p:lock:{x}:paused', field: 'failures:Jobs.x' };
        const write = { ...end, job: 'Jobs.x', tick, failed, limit: 3, pauseRecord: '{}', keepMs: 60_000 };
        replies.push(await store.countFailures(write));
      }
      return replies;
    };
    const onRedisEngine = new LockEngine({ url: redis.url, logger: false });
    const memory = new InMemoryLockStore();
    try {
      await onRedisEngine.waitUntilConnected();
      const redisStore = (onRedisEngine as unknown as { parts: { store: LockStore } }).parts.store;
      redisStore.preparePolicies();
      const [redisSaw, memorySaw] = [await count(redisStore)(), await count(memory)()];
      expect(redisSaw.map((reply) => reply && Object.values(reply as object))).toEqual([
        [1, false], [2, false], [2, false], [2, false], [0, false], [0, false], [1, false], [2, false], [3, true], [4, false],
      ]); // prettier-ignore
      expect(memorySaw).toEqual(redisSaw);
    } finally {
      await onRedisEngine.close();
    }
  });

  it('refuses to pause a job whose lock name is computed per call, as fleet.pause over Redis does', async () => {
    const declared = [
      { name: 'Tenants.bill', key: null, ttlMs: 1_000, cron: '0 0 * * * *', timeZone: 'UTC', utcOffset: null },
      { name: 'Jobs.fixed', key: 'fixed', ttlMs: 1_000, cron: '0 0 * * * *', timeZone: 'UTC', utcOffset: null },
    ];
    const redisFleet = await onRedis(`parity-pause-${Date.now()}:`);
    const store = new InMemoryLockStore();
    const memory = new LockEngine({ logger: false }, store);
    try {
      await redisFleet.a.waitUntilConnected();
      await Promise.all([redisFleet.a.declareJobs(declared), memory.declareJobs(declared)]);
      const refusal = await redisFleet.a.fleet.pause('Tenants.bill', 'ops').catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(ComputedLockNameError);
      expect(() => store.pauseJob('Tenants.bill')).toThrow(ComputedLockNameError);
      expect(() => store.pauseJob('Tenants.bill')).toThrow((refusal as Error).message);

      expect(await redisFleet.a.fleet.pause('Jobs.fixed', 'ops')).toBe(true);
      store.pauseJob('Jobs.fixed');
      const run = (locks: LockEngine) =>
        locks.runJob('Jobs.fixed', 'fixed', 1_000, () => 'ran').then((result) => result ?? 'skipped');
      expect([await run(redisFleet.b), await run(memory)]).toEqual(['skipped', 'skipped']);
    } finally {
      await Promise.all([redisFleet.close(), memory.close()]);
    }
  });

  it('keeps fencing tokens growing and refuses old occurrences once a state expired, as Redis does', async () => {
    const [redisSaw, memorySaw] = await onBoth(afterStateExpiry, { stateRetentionMs: 1_000, tickAheadLimitMs: 1_000 });
    expect(redisSaw).toEqual(['ran', 'skipped', 'still increasing', 'skipped', 'ran']);
    expect(memorySaw).toEqual(redisSaw);
  });
});
