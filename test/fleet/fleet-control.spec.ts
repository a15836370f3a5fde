import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import {
  DistributedLock,
  DistributedLockError,
  DistributedLockModule,
  DistributedLockService,
  type LockEvent,
} from '../../src';
import { createReplica } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

@Injectable()
class LedgerJobs {
  runs = 0;

  @Cron(CronExpression.EVERY_MINUTE)
  @DistributedLock('ledger', 30_000)
  reconcile(): void {
    this.runs++;
  }
}

// Two replicas; an operator steers them through one replica's DistributedLockService.
describe('seeing and steering the fleet from DistributedLockService', () => {
  let redis: TestRedis;
  let replicas: INestApplicationContext[];
  const events: LockEvent[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
    replicas = await Promise.all(
      ['pod-a', 'pod-b'].map((replicaName) =>
        createReplica(
          [
            DistributedLockModule.forRoot({
              url: redis.url,
              replicaName,
              logger: false,
              onEvent: (event) => events.push(event),
            }),
          ],
          [LedgerJobs],
        ),
      ),
    );
  });
  afterAll(async () => {
    await Promise.all(replicas.map((app) => app.close()));
    await redis.dispose();
  });
  const [a, b] = [0, 1].map((i) => () => replicas[i].get(LedgerJobs));
  const operator = () => replicas[0].get(DistributedLockService).fleet;

  it('lists the jobs the replicas declared', async () => {
    expect(await operator().jobs()).toEqual([
      expect.objectContaining({
        name: 'LedgerJobs.reconcile',
        record: expect.objectContaining({ key: 'ledger', cron: CronExpression.EVERY_MINUTE }),
        pause: undefined,
      }),
    ]);
  });

  it('pauses a job on every replica, with its own skip reason, and resumes it', async () => {
    expect(await operator().pause('LedgerJobs.reconcile', 'ops')).toBe(true);
    await Promise.all([a().reconcile(), b().reconcile()]);
    expect(a().runs + b().runs).toBe(0);
    expect(
      events.filter((event) => event.type === 'skipped').map((event) => event.type === 'skipped' && event.reason),
    ).toEqual(['paused', 'paused']);
    expect((await operator().jobs())[0].pause).toEqual({ by: 'ops', at: expect.any(Number) });
    expect(await operator().resume('LedgerJobs.reconcile')).toBe(true);
    await b().reconcile();
    expect(b().runs).toBe(1);
  });

  it('tells the replica that paused or resumed a job, with the note, as events', async () => {
    events.length = 0;
    await operator().pause('LedgerJobs.reconcile', 'ops', 'ledger migration');
    await operator().resume('LedgerJobs.reconcile');
    await operator().resume('LedgerJobs.reconcile'); // not paused: nothing to tell

    expect(events).toEqual([
      {
        type: 'paused',
        job: 'LedgerJobs.reconcile',
        key: 'ledger',
        pause: { by: 'ops', at: expect.any(Number), note: 'ledger migration' },
      },
      { type: 'resumed', job: 'LedgerJobs.reconcile', key: 'ledger', pause: undefined },
    ]);
  });

  it('reads which replica ran a job, and its outcome', async () => {
    const [latest] = await operator().runs('LedgerJobs.reconcile', { limit: 1 });
    expect(latest).toMatchObject({ job: 'LedgerJobs.reconcile', replica: 'pod-b', outcome: 'ok' });
  });

  it('shows who holds a lock, and releases it by force', async () => {
    await replicas[1].get(DistributedLockService).acquireLock('stuck', 60_000);
    const held = (await operator().locks()).find((lock) => lock.name === 'stuck');
    expect(held).toMatchObject({ replica: 'pod-b', ttlLeftMs: expect.any(Number) });
    expect(held!.ttlLeftMs!).toBeGreaterThan(50_000);
    expect(await operator().release('stuck')).toBe(true);
    await expect(replicas[0].get(DistributedLockService).acquireLock('stuck', 60_000)).resolves.toBe(true);
  });
});

describe('a fleet query while Redis hangs', () => {
  (CAN_CONTROL_REDIS ? it : it.skip)('rejects after its deadline instead of waiting', async () => {
    const redis = await startTestRedis();
    const app = await createReplica([
      DistributedLockModule.forRoot({ url: redis.url, logger: false, acquireTimeoutMs: 200 }),
    ]);
    redis.pause();
    try {
      const started = performance.now();
      await expect(app.get(DistributedLockService).fleet.jobs()).rejects.toThrow('Redis did not answer within 1000 ms');
      expect(performance.now() - started).toBeLessThan(3_000);
    } finally {
      redis.resume();
      await app.close();
      await redis.dispose();
    }
  });
});

describe('a fleet command while Redis is down', () => {
  (CAN_CONTROL_REDIS ? it : it.skip)(
    'rejects at once with a DistributedLockError saying Redis is not reachable',
    async () => {
      const redis = await startTestRedis();
      const app = await createReplica([DistributedLockModule.forRoot({ url: redis.url, logger: false })]);
      const locks = app.get(DistributedLockService);
      await redis.stop();
      try {
        const started = performance.now();
        const refusal = await locks.fleet.pause('Reports.nightly', 'ops').catch((error: unknown) => error);
        expect(refusal).toBeInstanceOf(DistributedLockError);
        expect((refusal as Error).message).toMatch(/^Redis is not reachable \(.+\); try again once it is$/);
        expect(performance.now() - started).toBeLessThan(1_000);
      } finally {
        await app.close();
        await redis.dispose();
      }
    },
  );
});
