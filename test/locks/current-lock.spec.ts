import { currentLock, type LockHandle } from '../../src';
import { LockEngine } from '../../src/core';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('currentLock() on a real Redis', () => {
  let redis: TestRedis;
  let locks: LockEngine;

  beforeAll(async () => {
    redis = await startTestRedis();
    locks = new LockEngine({ url: redis.url, logger: false });
  });
  afterAll(async () => {
    await locks.close();
    await redis.dispose();
  });

  it('is undefined outside a locked run', () => {
    expect(currentLock()).toBeUndefined();
  });

  it('gives a run its lock until its first await, and nothing after it, without lockContext', async () => {
    const seen: (LockHandle | undefined)[] = [];
    const outcome = await locks.withLock('context:sync', 5_000, async (lock) => {
      seen.push(currentLock());
      await tick();
      seen.push(currentLock());
      return lock;
    });
    expect(outcome.ran).toBe(true);
    expect(seen).toEqual([outcome.ran && outcome.result, undefined]);
    expect(currentLock()).toBeUndefined();
  });

  it('follows the run across awaits and into what it calls, with lockContext', async () => {
    const readLater = async () => {
      await tick();
      return currentLock();
    };
    const outcome = await locks.withLock(
      'context:async',
      5_000,
      async (lock) => {
        await tick();
        return { lock, afterAwait: currentLock(), inCallee: await readLater() };
      },
      { lockContext: true },
    );
    expect(outcome.ran).toBe(true);
    const { lock, afterAwait, inCallee } = outcome.ran ? outcome.result : ({} as never);
    expect(afterAwait).toBe(lock);
    expect(inCallee).toBe(lock);
  });

  it('keeps concurrent runs apart: each sees its own lock', async () => {
    const run = (key: string, lockContext: boolean) =>
      locks.withLock(
        key,
        5_000,
        async (lock) => {
          const atStart = currentLock();
          await tick();
          return { lock, atStart, afterAwait: currentLock() };
        },
        { lockContext },
      );
    const outcomes = await Promise.all([run('context:a', true), run('context:b', false), run('context:c', true)]);
    const [a, b, c] = outcomes.map((outcome) => (outcome.ran ? outcome.result : ({} as never)));
    expect([a.atStart, b.atStart, c.atStart]).toEqual([a.lock, b.lock, c.lock]);
    expect([a.afterAwait, b.afterAwait, c.afterAwait]).toEqual([a.lock, undefined, c.lock]);
  });

  it('does not show an outer run’s lock to an inner run without lockContext once it awaits', async () => {
    const outcome = await locks.withLock(
      'context:outer',
      5_000,
      async (outer) => {
        const inner = await locks.withLock('context:inner', 5_000, async (lock) => {
          const atStart = currentLock();
          await tick();
          return { lock, atStart, afterAwait: currentLock() };
        });
        return { outer, inner: inner.ran ? inner.result : undefined, outerAfterInner: currentLock() };
      },
      { lockContext: true },
    );
    const { outer, inner, outerAfterInner } = outcome.ran ? outcome.result : ({} as never);
    expect(inner!.atStart).toBe(inner!.lock);
    expect(inner!.afterAwait).toBeUndefined();
    expect(outerAfterInner).toBe(outer);
  });
});
