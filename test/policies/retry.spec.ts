import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule, DistributedLockService, type LockEvent } from '../../src';
import { createNamedReplicas, createReplica, RecordingLogger, REPLICA } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every attempt either replica made, in order: which replica, the trigger and attempt its lock carries. */
const attempts: { replica: string; tick: number | undefined; trigger: string; attempt: number }[] = [];
/** How many attempts throw before one succeeds. */
let failuresLeft = 0;

@Injectable()
class FlakyReport {
  constructor(@Inject(REPLICA) readonly replica: string) {}

  // Daily: each test calls it as the scheduler would, for the day's occurrence; the next is hours off.
  @Cron('0 0 0 * * *')
  @DistributedLock({ key: 'policies:flaky', ttlMs: 5_000, retry: { attempts: 3, backoffMs: 100 } })
  build(): void {
    const lock = currentLock()!;
    attempts.push({ replica: this.replica, tick: lock.tick, trigger: lock.trigger, attempt: lock.attempt });
    if (failuresLeft > 0) {
      failuresLeft--;
      throw new Error(`report failed (${failuresLeft} failures left)`);
    }
  }
}

describe('retry: a run that throws is attempted again, once per attempt across the fleet (real Redis)', () => {
  let redis: TestRedis;
  let apps: INestApplicationContext[];
  const events: LockEvent[] = [];
  const logger = new RecordingLogger();

  beforeAll(async () => {
    redis = await startTestRedis();
    apps = await createNamedReplicas(
      ['a', 'b'],
      (replica) => [
        DistributedLockModule.forRoot({
          url: redis.url,
          replicaName: replica,
          logger,
          onEvent: (event) => events.push(event),
        }),
      ],
      [FlakyReport],
    );
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis.dispose();
  });
  beforeEach(async () => {
    attempts.length = 0;
    events.length = 0;
    // Each test serves the day's occurrence afresh; the job declarations stay.
    const keys = await redis.client().keys('lock:{policies:flaky}*');
    if (keys.length > 0) await redis.client().del(...keys);
  });

  /** Both replicas' timers fire for the occurrence; the one that runs it rejects when its attempt throws. */
  const fireOnBoth = () =>
    Promise.allSettled(apps.map((app) => app.get(FlakyReport).build() as unknown as Promise<void>));

  const waitFor = async (done: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline) await sleep(20);
  };

  it('fails twice, then succeeds on the third attempt: three runs in all, attributed schedule, retry, retry', async () => {
    failuresLeft = 2;
    await fireOnBoth();
    await waitFor(() => attempts.length >= 3, 5_000);
    await sleep(800); // room for a duplicate or a fourth attempt to show up

    expect(attempts.map(({ trigger, attempt }) => [trigger, attempt])).toEqual([
      ['schedule', 1],
      ['retry', 2],
      ['retry', 3],
    ]);
    expect(new Set(attempts.map((run) => run.tick)).size).toBe(1);
    const ran = events.filter((event) => event.type === 'ran');
    expect(ran.map((event) => event.type === 'ran' && [event.outcome, event.trigger, event.attempt])).toEqual([
      ['error', 'schedule', 1],
      ['error', 'retry', 2],
      ['ok', 'retry', 3],
    ]);
    const history = await apps[0].get(DistributedLockService).fleet.runs('FlakyReport.build', { limit: 10 });
    expect(history.map((run) => [run.outcome, run.trigger, run.attempt]).reverse()).toEqual([
      ['error', 'schedule', 1],
      ['error', 'retry', 2],
      ['ok', 'retry', 3],
    ]);
  });

  it('stops after `attempts` in all and says "failed after 3 attempt(s)"', async () => {
    failuresLeft = 10;
    await fireOnBoth();
    await waitFor(() => attempts.length >= 3, 5_000);
    await sleep(800);

    expect(attempts.map((run) => run.attempt)).toEqual([1, 2, 3]);
    expect(events.filter((event) => event.type === 'failed')).toEqual([
      expect.objectContaining({ job: 'FlakyReport.build', attempts: 3, trigger: 'retry', attempt: 3 }),
    ]);
    expect(
      logger.messages('error').filter((line) => line.includes('FlakyReport.build failed after 3 attempt(s)')),
    ).toHaveLength(1);
  });

  it('retries on another replica when the one that failed is gone (its ledger says the attempt failed)', async () => {
    failuresLeft = 1;
    const spare = await createReplica(
      [DistributedLockModule.forRoot({ url: redis.url, replicaName: 'c', logger: false })],
      [FlakyReport, { provide: 'REPLICA', useValue: 'c' }],
    );
    // Replica c fails the first attempt, then shuts down before its own retry timer fires.
    await (spare.get(FlakyReport).build() as unknown as Promise<void>).catch(() => undefined);
    await spare.close();
    expect(attempts).toEqual([expect.objectContaining({ replica: 'c', attempt: 1 })]);

    // a and b look at the ledger about once a second: one of them takes attempt 2.
    await waitFor(() => attempts.length >= 2, 5_000);
    await sleep(1_500);
    expect(
      attempts.map(({ replica, attempt, trigger }) => [replica === 'c' ? 'c' : 'a or b', trigger, attempt]),
    ).toEqual([
      ['c', 'schedule', 1],
      ['a or b', 'retry', 2],
    ]);
  });
});
