import { performance } from 'node:perf_hooks';
import type { DistributedLockOptions } from '../../src';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';
import { fakeWallClock } from '../support/wall-clock';
import { type HealthApp, startHealthApp } from './health-app';

const ACQUIRE_TIMEOUT_MS = 400;
const itControllingRedis = CAN_CONTROL_REDIS ? it : it.skip;

describe('DistributedLockHealthIndicator on a /health endpoint', () => {
  let redis: TestRedis;
  let app: HealthApp | undefined;

  beforeAll(async () => {
    redis = await startTestRedis();
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await redis?.dispose();
  });

  it('answers 200 with each server, its latency and its clock offset while Redis answers', async () => {
    app = await startHealthApp({ url: redis.url });
    const { status, body } = await app.get();

    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    const details = body.info!.distributedLock;
    expect(details).toEqual({
      status: 'up',
      servers: [
        {
          server: expect.stringContaining(String(redis.port)),
          latencyMs: expect.any(Number),
          clockOffsetMs: expect.any(Number),
        },
      ],
      maxClockOffsetMs: 1000,
      overdue: [],
    });
    expect(Math.abs(details.servers[0].clockOffsetMs!)).toBeLessThan(100);
  });

  itControllingRedis('answers 503 within acquireTimeoutMs, with the reason, while Redis is paused', async () => {
    app = await startHealthApp({ url: redis.url, acquireTimeoutMs: ACQUIRE_TIMEOUT_MS });
    redis.pause();
    try {
      const { status, body, ms } = await app.get();

      expect(status).toBe(503);
      expect(body.status).toBe('error');
      expect(body.error!.distributedLock).toMatchObject({
        status: 'down',
        servers: [
          { server: expect.stringContaining(String(redis.port)), error: `no answer within ${ACQUIRE_TIMEOUT_MS} ms` },
        ],
        message: expect.stringContaining('did not answer TIME: no answer within 400 ms'),
      });
      expect(ms).toBeLessThan(ACQUIRE_TIMEOUT_MS + 500);
    } finally {
      redis.resume();
    }
  });

  itControllingRedis('answers 503 while Redis is stopped, and 200 again once it is back', async () => {
    app = await startHealthApp({ url: redis.url, acquireTimeoutMs: ACQUIRE_TIMEOUT_MS });
    await redis.stop();
    try {
      const { status, body, ms } = await app.get();

      expect(status).toBe(503);
      expect(body.error!.distributedLock.status).toBe('down');
      expect(body.error!.distributedLock.message).toMatch(/^Redis at .+ did not answer TIME: /);
      expect(ms).toBeLessThan(ACQUIRE_TIMEOUT_MS + 500);
    } finally {
      await redis.start();
    }
    await expect(waitForStatus(app, 200, 5_000)).resolves.toBe(200);
  });

  describe('on a quorum of three Redis nodes', () => {
    let others: TestRedis[] = [];

    beforeAll(async () => {
      others = await Promise.all([startTestRedis(), startTestRedis()]);
    });

    afterAll(async () => {
      await Promise.all(others.map((node) => node.dispose()));
    });

    const quorum = (): DistributedLockOptions => ({
      nodes: [redis.url, ...others.map((node) => node.url)],
      acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
    });

    itControllingRedis('stays up with one node paused, naming it, and goes down with two', async () => {
      app = await startHealthApp(quorum());
      others[0].pause();
      try {
        const one = await app.get();
        expect(one.status).toBe(200);
        const servers = one.body.info!.distributedLock.servers;
        expect(servers).toHaveLength(3);
        expect(servers.filter((server) => server.error !== undefined)).toEqual([
          {
            server: expect.stringContaining(String(others[0].port)),
            error: `no answer within ${ACQUIRE_TIMEOUT_MS} ms`,
          },
        ]);

        others[1].pause();
        const two = await app.get();
        expect(two.status).toBe(503);
        const { message } = two.body.error!.distributedLock;
        expect(message).toContain(`:${others[0].port}`);
        expect(message).toContain(`:${others[1].port}`);
        expect(message).not.toContain(`:${redis.port}`);
        expect(two.ms).toBeLessThan(ACQUIRE_TIMEOUT_MS + 500);
      } finally {
        for (const node of others) node.resume();
      }
    });
  });

  describe('with this replica’s clock off Redis’s', () => {
    let clock: ReturnType<typeof fakeWallClock>;

    beforeEach(() => {
      clock = fakeWallClock();
    });

    afterEach(() => {
      clock.restore();
    });

    it('answers 503 when the clock is seconds ahead, beyond the default bound', async () => {
      app = await startHealthApp({ url: redis.url });
      clock.set(Date.now() + 5_000);
      const { status, body } = await app.get();

      expect(status).toBe(503);
      const details = body.error!.distributedLock;
      expect(details.status).toBe('down');
      expect(details.servers[0].clockOffsetMs).toBeGreaterThan(4_900);
      expect(details.servers[0].clockOffsetMs).toBeLessThan(5_100);
      expect(details.message).toMatch(
        /clock is \d+ ms ahead of the clock of Redis at .+, beyond maxClockOffsetMs \(1000 ms\): the cron occurrences it serves run that much early/,
      );
    });

    it('answers 503 when the clock is seconds behind', async () => {
      app = await startHealthApp({ url: redis.url });
      clock.set(Date.now() - 3_000);
      const { status, body } = await app.get();

      expect(status).toBe(503);
      expect(body.error!.distributedLock.servers[0].clockOffsetMs).toBeLessThan(-2_900);
      expect(body.error!.distributedLock.message).toMatch(/clock is \d+ ms behind the clock of Redis/);
    });

    it('answers 200 for the same offset within a wider maxClockOffsetMs', async () => {
      app = await startHealthApp({ url: redis.url }, { maxClockOffsetMs: 10_000 });
      clock.set(Date.now() + 5_000);
      const { status, body } = await app.get();

      expect(status).toBe(200);
      expect(body.info!.distributedLock).toMatchObject({ status: 'up', maxClockOffsetMs: 10_000 });
      expect(body.info!.distributedLock.servers[0].clockOffsetMs).toBeGreaterThan(4_900);
    });
  });
});

/** Asks /health until it answers `status` or `withinMs` passes; resolves the last status seen. */
async function waitForStatus(app: HealthApp, status: number, withinMs: number): Promise<number> {
  const deadline = performance.now() + withinMs;
  let last = 0;
  while (performance.now() < deadline) {
    last = (await app.get()).status;
    if (last === status) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return last;
}
