import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule, type DistributedLockOptions } from '../../src';
import { CronSchedule } from '../../src/core/jobs/cron-schedule';
import { createNamedReplicas, RecordingLogger, REPLICA } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const EVERY_2_S = '*/2 * * * * *';

/** Every run of either job on any replica: the occurrence, and what started it. */
const runs: { job: string; replica: string; tick: number; trigger: string }[] = [];

function record(job: string, replica: string): void {
  const lock = currentLock()!;
  runs.push({ job, replica, tick: lock.tick!, trigger: lock.trigger });
}

@Injectable()
class LatestJob {
  constructor(@Inject(REPLICA) private readonly replica: string) {}

  @Cron(EVERY_2_S)
  @DistributedLock({ key: 'policies:latest', ttlMs: 5_000, catchUp: { windowMs: 60_000, runs: 'latest' } })
  sync(): void {
    record('latest', this.replica);
  }
}

@Injectable()
class AllJob {
  constructor(@Inject(REPLICA) private readonly replica: string) {}

  @DistributedLock({ key: 'policies:all', ttlMs: 5_000, catchUp: { windowMs: 60_000, runs: 'all', max: 2 } })
  @Cron(EVERY_2_S) // the other decorator order
  sync(): void {
    record('all', this.replica);
  }
}

describe('catch-up: occurrences the whole fleet missed run once it is back (real Redis, ScheduleModule)', () => {
  let redis: TestRedis;
  const logger = new RecordingLogger();

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(() => redis.dispose());
  beforeEach(() => {
    runs.length = 0;
  });

  const fleet = (job: typeof LatestJob | typeof AllJob, options: DistributedLockOptions = {}) =>
    createNamedReplicas(
      ['a', 'b'],
      (replica) => [
        ScheduleModule.forRoot(),
        DistributedLockModule.forRoot({ url: redis.url, replicaName: replica, logger, ...options }),
      ],
      [job],
    );
  const stop = (apps: INestApplicationContext[]) => Promise.all(apps.map((app) => app.close()));

  /** The occurrences of the schedule from `from` to `to` that no run served. */
  const unserved = (job: string, from: number, to: number) => {
    const served = new Set(runs.filter((run) => run.job === job).map((run) => run.tick));
    return new CronSchedule(EVERY_2_S).occurrencesBetween(from, to, 100).filter((tick) => !served.has(tick));
  };

  it("runs: 'latest' runs the most recent occurrence missed while every replica was down, once", async () => {
    let apps = await fleet(LatestJob);
    await sleep(3_000);
    await stop(apps);
    const down = Date.now();
    await sleep(5_000); // two or three occurrences pass with no replica up
    apps = await fleet(LatestJob);
    await sleep(2_500);
    await stop(apps);

    const catchUps = runs.filter((run) => run.trigger === 'catch-up').map((run) => run.tick);
    // The look at boot ran the latest occurrence missed while down, and none before it: those stay
    // unserved. (An occurrence that came due while the replicas were booting may be caught up by
    // the next look.) Were a replica's timer to serve the next occurrence before any replica
    // looked, the job would be up to date and nothing caught up, as 'latest' says.
    if (catchUps.length === 0) {
      expect(runs.some((run) => run.trigger === 'schedule' && run.tick > down)).toBe(true);
    } else {
      expect(catchUps[0]).toBeGreaterThan(down);
      expect(unserved('latest', down, catchUps[0] - 1).length).toBeGreaterThanOrEqual(1);
      expect(catchUps.length).toBeLessThanOrEqual(2);
    }
    // Never twice: every occurrence ran at most once, whatever started it.
    const ticks = runs.map((run) => run.tick);
    expect(new Set(ticks).size).toBe(ticks.length);
  }, 30_000);

  it("runs: 'all' runs the newest `max` missed occurrences, oldest first, and says how many it dropped", async () => {
    let apps = await fleet(AllJob);
    // The job's definition is first seen once the fleet is up: an occurrence due while it booted is not its.
    const up = Date.now();
    await sleep(3_000);
    const stopping = Date.now();
    await stop(apps);
    await sleep(7_000); // three or four occurrences pass with no replica up
    const back = Date.now();
    apps = await fleet(AllJob);
    await sleep(2_500);
    await stop(apps);

    const catchUps = runs.filter((run) => run.trigger === 'catch-up').map((run) => run.tick);
    // Left out: the oldest occurrences missed while down, beyond the two the look at boot ran.
    const dropped = unserved('all', up, back - 1_000);
    expect(dropped.length).toBeGreaterThanOrEqual(1);
    // Missed while the fleet was stopping or down (a timer due as the stop began may not have fired).
    expect(dropped.every((tick) => tick > stopping - 2_000)).toBe(true);
    // The look at boot ran the newest two, oldest first; an occurrence that came due while the
    // replicas were booting is caught up by the next look.
    expect(catchUps.length).toBeGreaterThanOrEqual(2);
    expect(catchUps).toEqual([...catchUps].sort((x, y) => x - y));
    expect(Math.max(...dropped)).toBeLessThan(catchUps[0]);
    // Said once per replica that left them out (here both may), never again by a later look.
    const warnings = logger.messages('warn').filter((line) => line.startsWith('AllJob.sync:'));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(2);
    for (const warning of warnings) {
      expect(warning).toContain(
        `${dropped.length} missed occurrence(s) older than the newest 2 are not caught up (catchUp.max 2)`,
      );
    }
    const ticks = runs.map((run) => run.tick);
    expect(new Set(ticks).size).toBe(ticks.length);
  }, 30_000);
});
