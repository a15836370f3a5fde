import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import { LockEngine } from '../../src';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

/** Blocks the event loop, as a long synchronous job or a GC pause would. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

/**
 * Commands sent in one tick leave in one write at its end. A stall in between delays each command
 * by as long as it waited: only that long is added to its deadline.
 */
describeWithOwnRedis('deadlines of commands held back for one write', () => {
  let redis: TestRedis;
  let engine: LockEngine;

  beforeAll(async () => {
    redis = await startTestRedis();
    engine = new LockEngine({ url: redis.url, acquireTimeoutMs: 1_000, failMode: 'closed', logger: false });
    await engine.waitUntilConnected();
  });
  afterAll(async () => {
    redis.resume();
    await engine.close();
    await redis.dispose();
  });

  it('gives a command sent just before a stalled flush its own deadline, not the stall added to it', async () => {
    redis.pause(); // no reply comes: each decision is made by its deadline
    const sentFirstAt = performance.now();
    const first = engine.acquireLock('held-back:first', 5_000).then(() => performance.now());
    stall(2_000);
    const sentSecondAt = performance.now();
    const second = engine.acquireLock('held-back:second', 5_000).then(() => performance.now());

    const [firstDecidedAt, secondDecidedAt] = await Promise.all([first, second]);
    redis.resume();

    // The first waited 2 s in the process before Redis could see it: its second of waiting starts then.
    expect(firstDecidedAt - sentFirstAt).toBeGreaterThanOrEqual(2_900);
    // The second left at once: it gets its own second, not three.
    expect(secondDecidedAt - sentSecondAt).toBeGreaterThanOrEqual(950);
    expect(secondDecidedAt - sentSecondAt).toBeLessThan(2_000);
  });

  it("never holds back the user's own commands on the library's connection", async () => {
    const shared = new LockEngine({ url: redis.url, logger: false });
    try {
      await shared.waitUntilConnected();
      const taking = shared.acquireLock('held-back:user', 5_000); // the library's command, held for this tick's write
      const client = shared.client as Redis; // handed out: from now on nothing is held back
      const sentAt = Date.now();
      const executed = client.time(); // the user's command, in the same tick
      stall(1_000);
      const [seconds, micros] = await executed;
      const executedAt = Number(seconds) * 1_000 + Number(micros) / 1_000;
      expect(executedAt - sentAt).toBeLessThan(500); // Redis ran it during the stall, not after
      expect(await taking).toBe(true);
    } finally {
      await shared.close();
    }
  });
});
