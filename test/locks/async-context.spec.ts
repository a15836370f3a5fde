import { AsyncLocalStorage } from 'node:async_hooks';
import { LockEngine } from '../../src/core';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

// Request-scoped context (nestjs-cls, a tenant id, a contextual logger) lives in AsyncLocalStorage:
// a guarded run must see its own caller's, however its lock was decided.
describe("a guarded run sees its caller's async context", () => {
  let redis: TestRedis;
  let engine: LockEngine;
  const tenant = new AsyncLocalStorage<string>();
  const runAs = (who: string, key: string) =>
    tenant.run(who, () => engine.withLock(key, 5_000, () => tenant.getStore()));

  beforeAll(async () => {
    redis = await startTestRedis();
    engine = new LockEngine({ url: redis.url, logger: false, acquireTimeoutMs: 300 });
    await engine.waitUntilConnected();
  });
  afterAll(async () => {
    await engine.close();
    await redis.dispose();
  });

  it('when Redis answers', async () => {
    const seen = await Promise.all([runAs('tenant-A', 'answered-a'), runAs('tenant-B', 'answered-b')]);
    expect(seen).toEqual([
      { ran: true, result: 'tenant-A' },
      { ran: true, result: 'tenant-B' },
    ]);
  });

  (CAN_CONTROL_REDIS ? it : it.skip)(
    'when the fail mode decides at the deadline, for several callers at once',
    async () => {
      redis.pause();
      try {
        const seen = await Promise.all([runAs('tenant-A', 'deadline-a'), runAs('tenant-B', 'deadline-b')]);
        expect(seen).toEqual([
          { ran: true, result: 'tenant-A' },
          { ran: true, result: 'tenant-B' },
        ]);
      } finally {
        redis.resume();
      }
    },
  );
});
