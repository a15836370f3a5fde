import { LockEngine } from '../../src/core';
import { RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

/** A wrong address at boot is not an outage like the others: Redis was never reached at all. */
describeWithOwnRedis('a Redis never reached since the process started', () => {
  let redis: TestRedis;
  let engine: LockEngine | undefined;
  let logger: RecordingLogger;
  beforeEach(async () => {
    redis = await startTestRedis();
    await redis.stop(); // its port answers nothing now: a wrong address
    logger = new RecordingLogger();
  });
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
    await redis.dispose();
  });
  const open = (extra: { failClosedUntilConnected?: boolean } = {}) =>
    (engine = new LockEngine({ url: redis.url, acquireTimeoutMs: 300, logger, ...extra }));

  it('is an error naming the address and the connection error, said again at most once a minute', async () => {
    const locks = open();
    expect(await locks.acquireLock('job', 5_000)).toBe(true); // fail-open, the default
    expect(await locks.acquireLock('job-2', 5_000)).toBe(true);
    const errors = logger.messages('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(
      `Redis at redis://127.0.0.1:${redis.port}/0 has not been reachable since this process started`,
    );
    expect(errors[0]).toMatch(/ECONNREFUSED/);
    expect(errors[0]).toMatch(/Check the address \(host, port, redis:\/\/ or rediss:\/\/\)/);
  });

  it("gives the connection's own error to a health check, not only the wait", async () => {
    const locks = open();
    await locks.waitUntilConnected();
    const [probe] = await locks.probe();
    expect(probe).toMatchObject({
      error: expect.stringMatching(/not connected after 300 ms; last error: .*ECONNREFUSED/),
    });
  });

  it('with failClosedUntilConnected, runs nothing unlocked until the first connection, then fails open again', async () => {
    const locks = open({ failClosedUntilConnected: true });
    const skips: string[] = [];
    locks.onEvent((event) => event.type === 'skipped' && skips.push(event.reason));
    expect(await locks.withLock('job', 5_000, () => 'ran')).toEqual({ ran: false, reason: 'unavailable' });
    expect(skips).toEqual(['unavailable']);

    await redis.start();
    expect(await locks.waitUntilConnected(10_000)).toBe(true);
    expect(await locks.withLock('job', 5_000, () => 'ran')).toEqual({ ran: true, result: 'ran' });

    await redis.stop(); // an outage after the first connection: fail-open as usual
    await expect(locks.withLock('job', 5_000, (lock) => lock.withoutRedis)).resolves.toEqual({
      ran: true,
      result: true,
    });
  });
});
