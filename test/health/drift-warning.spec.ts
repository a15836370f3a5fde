import { LockEngine } from '../../src/core';
import type { JobDeclaration } from '../../src/core/fleet/fleet-records';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { type DistributedLockDetails, type HealthApp, startHealthApp } from './health-app';

/** One job, as two versions of an app declare it: its schedule changed. */
const version = (cron: string): JobDeclaration => ({
  name: 'Reports.export',
  key: 'health:export',
  ttlMs: 30_000,
  cron,
  timeZone: 'UTC',
  utcOffset: null,
});

describe('DistributedLockHealthIndicator and schedule drift (real Redis, real HTTP)', () => {
  let redis: TestRedis;
  let app: HealthApp;
  const engines: LockEngine[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
    app = await startHealthApp({ url: redis.url, keyPrefix: 'drift:' });
  });
  afterAll(async () => {
    await app.close();
    await Promise.all(engines.map((engine) => engine.close()));
    await redis.dispose();
  });

  it('stays up, with a warning naming the job and which definition runs it, while live replicas disagree', async () => {
    for (const [replicaName, cron] of [
      ['old-pod', '0 0 * * * *'],
      ['new-pod', '0 30 * * * *'],
    ]) {
      const engine = new LockEngine({ url: redis.url, keyPrefix: 'drift:', replicaName, logger: false });
      engines.push(engine);
      await engine.waitUntilConnected();
      await engine.declareJobs([version(cron)]);
      // One definition recorded before the next is declared: the second is the newer by Redis's clock.
      const recorded = engines.length;
      for (let tries = 0; (await redis.client().hlen('drift:{fleet}:definitions')) < recorded; tries++) {
        if (tries > 50) throw new Error(`${replicaName} never published its definition`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    let body = (await app.get()).body;
    for (let tries = 0; !body.info?.distributedLock?.warning && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      body = (await app.get()).body;
    }

    expect(body.status).toBe('ok');
    const details = body.info!.distributedLock as DistributedLockDetails & { drift: { job: string }[] };
    expect(details.warning).toBe(
      'Reports.export runs with different definitions on live replicas: 0 30 * * * * on new-pod (the newest, ' +
        'which runs it) and 0 0 * * * * on old-pod (skipping it).',
    );
    expect(details.drift).toEqual([expect.objectContaining({ job: 'Reports.export' })]);
  });
});
