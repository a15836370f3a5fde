import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule, DistributedLockService, type LockEvent } from '../../src';
import { jobFailuresField, lockKeys } from '../../src/core/keys';
import { nextStreak } from '../../src/core/policies/failure-streak';
import { createNamedReplicas, RecordingLogger, REPLICA } from '../support/create-replica';
import { eventually, sleep } from '../support/real-time';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const JOB = 'NightlyExport.run';
/** What the next runs do, in order; a run past the end succeeds. */
let outcomes: ('fail' | 'ok')[] = [];
/** Every run on either replica: which replica, and the occurrence it served. */
const runs: { replica: string; tick: number }[] = [];

@Injectable()
class NightlyExport {
  constructor(@Inject(REPLICA) readonly replica: string) {}

  // Every second, so a test sees several occurrences; `pauseAfterFailures: 3` is the policy under test.
  @Cron('* * * * * *')
  @DistributedLock({ key: 'export', ttlMs: 5_000, pauseAfterFailures: 3 })
  run(): void {
    runs.push({ replica: this.replica, tick: currentLock()!.tick! });
    if (outcomes.shift() === 'fail') throw new Error('warehouse unreachable');
  }
}

describe('pauseAfterFailures: a job that keeps failing pauses itself on every replica (real Redis)', () => {
  let redis: TestRedis;
  let apps: INestApplicationContext[];
  const events: (LockEvent & { replica: string })[] = [];
  const logger = new RecordingLogger();

  beforeAll(async () => {
    redis = await startTestRedis();
    outcomes = ['fail', 'fail', 'fail'];
    apps = await createNamedReplicas(
      ['a', 'b'],
      (replica) => [
        ScheduleModule.forRoot(),
        DistributedLockModule.forRoot({
          url: redis.url,
          replicaName: replica,
          logger,
          onEvent: (event) => events.push({ ...event, replica }),
        }),
      ],
      [NightlyExport],
    );
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis.dispose();
  });
  const fleet = () => apps[0].get(DistributedLockService).fleet;
  const pauseRecord = async () => {
    const stored = await redis.client().hget(lockKeys('', 'export').paused, JOB);
    return stored === null ? undefined : JSON.parse(stored);
  };

  it('pauses after three occurrences in a row failed: once, with the last error in its note, and skips after', async () => {
    await eventually(() => events.some((event) => event.type === 'paused'), 15_000);
    const pausedAt = runs.length;
    await sleep(2_500); // two more occurrences come due

    expect(pausedAt).toBe(3);
    expect(runs).toHaveLength(3);
    expect(new Set(runs.map((run) => run.tick)).size).toBe(3);
    expect(await pauseRecord()).toEqual({
      by: 'pauseAfterFailures',
      at: expect.any(Number),
      afterFailures: 3,
      note: expect.stringMatching(
        /^3 occurrence\(s\) in a row failed, the last \(\d{4}-\d\d-\d\dT[\d:.]+Z\) with: warehouse unreachable$/,
      ),
    });
    const paused = events.filter((event) => event.type === 'paused');
    expect(paused).toEqual([
      expect.objectContaining({ type: 'paused', job: JOB, key: 'export', pause: await pauseRecord() }),
    ]);
    expect(logger.messages('error').filter((line) => line.includes('is paused on every replica'))).toEqual([
      `${JOB} is paused on every replica: ${(await pauseRecord()).note}. Resume it once fixed (CLI: resume ${JOB}).`,
    ]);
    const skipped = events.filter((event) => event.type === 'skipped' && event.reason === 'paused');
    expect(new Set(skipped.map((event) => event.replica))).toEqual(new Set(['a', 'b']));
    expect((await fleet().jobs())[0].pause).toEqual(await pauseRecord());
  });

  it('counts anew after resume, and after each success: two failures, a success, two failures do not pause', async () => {
    outcomes = ['fail', 'fail', 'ok', 'fail', 'fail'];
    runs.length = 0;
    events.length = 0;
    expect(await fleet().resume(JOB)).toBe(true);
    expect(await redis.client().hexists(lockKeys('', 'export').state, jobFailuresField(JOB))).toBe(0);

    await eventually(() => runs.length >= 6, 15_000);

    expect(events.filter((event) => event.type === 'paused')).toEqual([]);
    expect(await pauseRecord()).toBeUndefined();
    expect(new Set(runs.map((run) => run.tick)).size).toBe(runs.length);
  });
});

describe('the failure count: an occurrence counted once, an older end changes nothing, a later success ends it', () => {
  it.each([
    ['a first failure', undefined, 10, true, { count: 1, tick: 10 }],
    ['a later failure', { count: 1, tick: 10 }, 20, true, { count: 2, tick: 20 }],
    ['the same occurrence failing again', { count: 2, tick: 20 }, 20, true, { count: 2, tick: 20 }],
    ['an older occurrence failing late', { count: 2, tick: 20 }, 15, true, { count: 2, tick: 20 }],
    ['an older occurrence succeeding late', { count: 2, tick: 20 }, 15, false, { count: 2, tick: 20 }],
    ['a later success', { count: 2, tick: 20 }, 30, false, { count: 0, tick: 30 }],
    ['an older occurrence failing after a later success', { count: 0, tick: 30 }, 25, true, { count: 0, tick: 30 }],
    ['a failure after a success', { count: 0, tick: 30 }, 40, true, { count: 1, tick: 40 }],
  ])('%s', (_case, stored, tick, failed, expected) => {
    expect(nextStreak(stored, tick, failed)).toEqual(expected);
  });
});
