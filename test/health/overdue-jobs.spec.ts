import { Injectable } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { DistributedLock } from '../../src';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { DelayProxy } from '../support/tcp-proxy';
import { type HealthApp, startHealthApp } from './health-app';

const HOUR_MS = 3_600_000;

/** A job declared by the app but scheduled by no one (no ScheduleModule): its occurrences run nowhere. */
@Injectable()
class HourlyJobs {
  runs = 0;

  @Cron('0 0 * * * *', { timeZone: 'UTC' })
  @DistributedLock('health:hourly', 60_000)
  async report(): Promise<void> {
    this.runs++;
  }
}

/** The latest top of the hour at least `graceMs` old: the occurrence the check looks at. */
const dueOccurrence = (graceMs: number): number => Math.floor((Date.now() - graceMs - 50) / HOUR_MS) * HOUR_MS;

describe('DistributedLockHealthIndicator and overdue @Cron jobs', () => {
  let redis: TestRedis;
  let app: HealthApp | undefined;
  let apps = 0;
  /** A key prefix of its own, where the job was first declared two hours ago: its recent occurrences are its own. */
  const keyPrefix = async (): Promise<string> => {
    const prefix = `overdue-${++apps}:`;
    await redis.client().hset(`${prefix}jobs:first-declared`, 'HourlyJobs.report', String(Date.now() - 2 * HOUR_MS));
    return prefix;
  };

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

  it('answers 503 naming a job whose latest occurrence ran on no replica', async () => {
    app = await startHealthApp({ url: redis.url, keyPrefix: await keyPrefix() }, {}, [HourlyJobs]);
    const occurrence = dueOccurrence(60_000);
    const { status, body } = await app.get();

    expect(status).toBe(503);
    const details = body.error!.distributedLock;
    expect(details.overdue).toEqual([
      { job: 'HourlyJobs.report', occurrence: new Date(occurrence).toISOString(), lateMs: expect.any(Number) },
    ]);
    expect(details.overdue![0].lateMs).toBeGreaterThanOrEqual(60_000);
    expect(details.message).toMatch(
      new RegExp(
        `^HourlyJobs\\.report has not run its occurrence of ${new Date(occurrence).toISOString()} on any replica \\(\\d+ s ago\\)\\.$`,
      ),
    );
    expect(details.servers).toHaveLength(1); // Redis itself answered
  });

  it('does not count an occurrence from before the job was first declared (a job just deployed)', async () => {
    app = await startHealthApp({ url: redis.url, keyPrefix: `overdue-new-${++apps}:` }, {}, [HourlyJobs]);
    const { status, body } = await app.get();
    expect(status).toBe(200);
    expect(body.info!.distributedLock).toMatchObject({ status: 'up', overdue: [] });
  });

  it("stays up with a warning naming a job that paused itself (pauseAfterFailures); an operator's pause is not one", async () => {
    const prefix = await keyPrefix();
    app = await startHealthApp({ url: redis.url, keyPrefix: prefix }, {}, [HourlyJobs]);
    const pausedKey = `${prefix}lock:{health:hourly}:paused`;
    await redis.client().hset(pausedKey, 'HourlyJobs.report', JSON.stringify({ by: 'ops', at: 0, note: 'migration' }));
    expect((await app.get()).body.info!.distributedLock).not.toHaveProperty('warning');

    const note = '3 occurrence(s) in a row failed, the last (2026-12-07T04:00:00.000Z) with: disk full';
    const pause = { by: 'pauseAfterFailures', at: Date.parse('2026-12-07T04:00:01Z'), note, afterFailures: 3 };
    await redis.client().hset(pausedKey, 'HourlyJobs.report', JSON.stringify(pause));
    const { status, body } = await app.get();

    expect(status).toBe(200); // paused: not overdue, and not a reason to take the replica out
    expect(body.info!.distributedLock).toMatchObject({
      status: 'up',
      pausedAfterFailures: [{ job: 'HourlyJobs.report', at: '2026-12-07T04:00:01.000Z', note }],
      warning: `HourlyJobs.report paused itself on every replica: ${note}. Resume it once fixed.`,
    });
  });

  it('answers 200 once a replica has run that occurrence', async () => {
    app = await startHealthApp({ url: redis.url, keyPrefix: await keyPrefix() }, {}, [HourlyJobs]);
    expect((await app.get()).status).toBe(503);

    await app.nest.get(HourlyJobs).report(); // a direct call serves the latest scheduled occurrence
    expect(app.nest.get(HourlyJobs).runs).toBe(1);
    const { status, body } = await app.get();

    expect(status).toBe(200);
    expect(body.info!.distributedLock).toMatchObject({ status: 'up', overdue: [] });
  });

  it('leaves overdue jobs out with checkOverdue: false', async () => {
    app = await startHealthApp({ url: redis.url, keyPrefix: await keyPrefix() }, { checkOverdue: false }, [HourlyJobs]);
    const { status, body } = await app.get();

    expect(status).toBe(200);
    expect(body.info!.distributedLock.overdue).toBeUndefined();
  });

  it('checks nothing overdue with operations off: no replica declares its jobs', async () => {
    app = await startHealthApp({ url: redis.url, keyPrefix: await keyPrefix(), operations: false }, {}, [HourlyJobs]);
    const { status, body } = await app.get();

    expect(status).toBe(200);
    expect(body.info!.distributedLock.overdue).toBeUndefined();
  });

  it('answers within acquireTimeoutMs when Redis answers TIME in time but is too slow for the job records', async () => {
    const proxy = await DelayProxy.start(redis);
    try {
      app = await startHealthApp({ url: proxy.url, keyPrefix: await keyPrefix(), acquireTimeoutMs: 400 }, {}, [
        HourlyJobs,
      ]);
      // One round trip fits in the deadline; the records take three (jobs, served tick, run history).
      proxy.delayMs = 250;
      const { status, body, ms } = await app.get();

      expect(status).toBe(503);
      const details = body.error!.distributedLock;
      expect(details.servers[0].error).toBeUndefined();
      expect(details.overdue).toBeUndefined();
      expect(details.message).toBe(
        "The fleet's job records could not be read to look for overdue jobs: Redis did not answer within 400 ms.",
      );
      expect(ms).toBeLessThan(400 + 500);
    } finally {
      proxy.delayMs = 0;
      // Let the delayed commands through first: the proxy would pass QUIT ahead of them.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await app?.close();
      app = undefined;
      await proxy.close();
    }
  });
});
