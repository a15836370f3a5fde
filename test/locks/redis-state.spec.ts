import { LockEngine } from '../../src';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the library leaves in Redis beside the locks: the state hash of fenced and scheduled lock names. */
describe('lock state in Redis stays bounded and correct', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('expires the state of per-tenant lock names left unused for the retention', async () => {
    // A retention of 3 s: long enough that a busy machine writes every tenant's state before the
    // first expires, short enough to watch them all expire.
    const engine = new LockEngine({ url: redis.url, fencing: true, stateRetentionMs: 3_000, tickAheadLimitMs: 200 });
    const tenants = Array.from({ length: 100 }, (_, i) => `tenant:${i}`);
    try {
      for (const tenant of tenants) {
        // The occurrence of now: an occurrence rounded down to the second would be up to 1 s old.
        const outcome = await engine.withLock(tenant, 300, () => 'billed', { tick: Date.now() });
        expect(outcome.ran).toBe(true);
      }
      const observer = redis.client();
      const states = tenants.map((tenant) => engine.keysFor(tenant).state);
      expect(await observer.exists(...states)).toBe(100);
      const ttls = await Promise.all(states.slice(0, 5).map((state) => observer.pttl(state)));
      for (const ttl of ttls) {
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(3_200); // retention + the ahead bound
      }
      await sleep(3_500);
      expect(await observer.exists(...states)).toBe(0);
    } finally {
      await engine.close();
    }
  });

  it('keeps the state at least twice the TTL, whatever stateRetentionMs says', async () => {
    const engine = new LockEngine({ url: redis.url, fencing: true, stateRetentionMs: 1_000, tickAheadLimitMs: 1 });
    try {
      expect(await engine.acquireLock('long-ttl', 30_000)).toBe(true);
      expect(await redis.client().pttl(engine.keysFor('long-ttl').state)).toBeGreaterThan(59_000);
      await engine.releaseLock('long-ttl');
    } finally {
      await engine.close();
    }
  });

  it('keeps fencing tokens growing when the counter is stale, as on a replica promoted with an older copy', async () => {
    const engine = new LockEngine({ url: redis.url, fencing: true, logger: false });
    const observer = redis.client();
    try {
      const issued: number[] = [];
      for (let i = 0; i < 3; i++) {
        expect(await engine.acquireLock('promoted', 5_000)).toBe(true);
        issued.push(engine.fencingToken('promoted')!);
        await engine.releaseLock('promoted');
      }
      // The promoted replica had only seen the first acquisition.
      await observer.hset(engine.keysFor('promoted').state, 'fence', String(issued[0]));
      expect(await engine.acquireLock('promoted', 5_000)).toBe(true);
      expect(engine.fencingToken('promoted')).toBeGreaterThan(Math.max(...issued));
      expect(Number.isSafeInteger(engine.fencingToken('promoted'))).toBe(true);
    } finally {
      await engine.close();
    }
  });
});
