import { type INestApplicationContext, Injectable } from '@nestjs/common';
import { DistributedLock, DistributedLockModule, DistributedLockService } from '../../src';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, freePort, startTestRedis, type TestRedis } from '../support/redis-server';

/** These tests kill, pause or cut off Redis: only a Redis the suite started itself, never one named by REDIS_URL. */
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ACQUIRE_TIMEOUT_MS = 300;

/** A guarded job that counts its runs. */
@Injectable()
class TickJob {
  runs = 0;

  @DistributedLock('outage-logging:tick', 10_000)
  async run(): Promise<'ran'> {
    this.runs++;
    return 'ran';
  }
}

describeWithOwnRedis('outage logging through the Nest application logger (context DistributedLock)', () => {
  let redis: TestRedis;
  let app: INestApplicationContext;
  let label: string;
  const logger = new RecordingLogger();
  const warnings = () => logger.lockMessages('warn');
  const recoveries = () => logger.lockMessages('log');

  /** `count` ticks of the decorated job and of a manual lock, `gapMs` apart. */
  async function ticks(count: number, gapMs: number): Promise<void> {
    const locks = app.get(DistributedLockService);
    for (let tick = 0; tick < count; tick++) {
      await app.get(TickJob).run();
      if (await locks.acquireLock('outage-logging:manual', 10_000)) await locks.releaseLock('outage-logging:manual');
      if (gapMs > 0) await sleep(gapMs);
    }
  }

  beforeAll(async () => {
    redis = await startTestRedis();
    label = `redis://127.0.0.1:${redis.port}/0`;
    app = await createReplica(
      [DistributedLockModule.forRoot({ host: '127.0.0.1', port: redis.port, acquireTimeoutMs: ACQUIRE_TIMEOUT_MS })],
      [TickJob],
      logger,
    );
  });
  afterAll(async () => {
    await app.close();
    await redis.dispose();
  });

  it('logs nothing about Redis while it is up', async () => {
    await ticks(5, 0);
    expect(app.get(TickJob).runs).toBe(5);
    expect(warnings()).toEqual([]);
    expect(recoveries()).toEqual([]);
  });

  it('warns exactly once when Redis is killed, however many ticks fall inside the outage', async () => {
    await redis.kill();
    const runsBefore = app.get(TickJob).runs;

    await ticks(40, 50); // about 2 s: several failed reconnection attempts fall inside too

    expect(app.get(TickJob).runs - runsBefore).toBe(40); // fail-open: every tick ran
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatch(
      new RegExp(`^Redis at ${label} is unavailable \\(.+\\); guarded jobs run without a lock until it is back\\.$`),
    );
    expect(recoveries()).toEqual([]);
  });

  it('logs one line when Redis is back, and nothing more on the ticks after it', async () => {
    await redis.start();
    expect(await app.get(DistributedLockService).waitUntilConnected(8_000)).toBe(true);

    await ticks(10, 0);

    expect(recoveries()).toEqual([`Redis at ${label} is reachable again; locks are taken in Redis again.`]);
    expect(warnings()).toHaveLength(1);
  });

  it('warns once more for a second outage (Redis paused) and logs its end once', async () => {
    redis.pause();
    try {
      await ticks(3, 0); // each acquisition and release waits acquireTimeoutMs
    } finally {
      redis.resume();
    }
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]).toMatch(new RegExp(`^Redis at ${label} is unavailable \\(no reply within 300 ms\\);`));
    expect(recoveries()).toHaveLength(1);

    await ticks(5, 0);

    expect(recoveries()).toHaveLength(2);
    expect(recoveries()[1]).toBe(`Redis at ${label} is reachable again; locks are taken in Redis again.`);
    expect(warnings()).toHaveLength(2);
    expect(logger.lockMessages('error')).toEqual([]);
  });
});

describe('outage logging through the logger option, fail-closed, Redis never up', () => {
  let app: INestApplicationContext;
  let port: number;
  const logger = new RecordingLogger();

  beforeAll(async () => {
    port = await freePort();
    app = await createReplica(
      [
        DistributedLockModule.forRoot({
          host: '127.0.0.1',
          port,
          acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
          failMode: 'closed',
          logger,
        }),
      ],
      [TickJob],
    );
  });
  afterAll(async () => {
    await app.close();
  });

  it('says it once across 50 skipped ticks, as an error naming a Redis never reached, and never logs a recovery', async () => {
    for (let tick = 0; tick < 50; tick++) {
      expect(await app.get(TickJob).run()).toBeUndefined();
      if (tick % 10 === 0) await sleep(100); // let reconnection attempts fail in between
    }
    expect(app.get(TickJob).runs).toBe(0);
    expect(logger.messages('error')).toHaveLength(1);
    expect(logger.messages('error')[0]).toMatch(
      new RegExp(
        `^Redis at redis://127\\.0\\.0\\.1:${port}/0 has not been reachable since this process started \\(.+ECONNREFUSED.+\\); guarded jobs are skipped until it is\\. Check the address`,
      ),
    );
    expect(logger.messages('log')).toEqual([]);
    expect(logger.messages('warn')).toEqual([]);
  });
});
