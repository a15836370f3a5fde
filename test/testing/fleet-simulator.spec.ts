import { Injectable, Module } from '@nestjs/common';
import { Cron, CronExpression, ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { currentLock, DistributedLock, DistributedLockModule } from '../../src';
import { FleetSimulator, OccurrenceNotOnceError } from '../../src/testing';

// The fleet simulator: replicas of one app over one in-memory store, on Jest's fake timers, with
// faults switched by the test. No Redis: the app's DistributedLockModule.forRoot points at a host
// that does not exist, and withInMemoryLocks replaces it.

const MINUTE = 60_000;
const START = Date.parse('2027-01-04T00:00:00Z');

/** Occurrences a test makes fail on their first attempt, and how long each run takes (fake time). */
const plan = { failFirstAttempt: new Set<number>(), runMs: 0, attempts: new Map<number, number>() };
const runFor = async (tick: number): Promise<void> => {
  const attempt = (plan.attempts.get(tick) ?? 0) + 1;
  plan.attempts.set(tick, attempt);
  if (plan.runMs > 0) await new Promise((resolve) => setTimeout(resolve, plan.runMs));
  if (attempt === 1 && plan.failFirstAttempt.has(tick))
    throw new Error(`planned failure of ${new Date(tick).toISOString()}`);
};

@Injectable()
class ReportJobs {
  @Cron(CronExpression.EVERY_MINUTE, { utcOffset: 0 })
  @DistributedLock('reports', 5 * MINUTE)
  async everyMinute(): Promise<void> {
    await runFor(currentLock()!.tick!);
  }

  @Cron(CronExpression.EVERY_5_MINUTES, { utcOffset: 0 })
  @DistributedLock({
    key: 'invoices',
    ttlMs: MINUTE,
    catchUp: { windowMs: 60 * MINUTE, runs: 'all', max: 20 },
    retry: { attempts: 3, backoffMs: 10_000 },
    recoverCrashed: true,
  })
  async everyFiveMinutes(): Promise<void> {
    await runFor(currentLock()!.tick!);
  }

  /** Not guarded: every replica runs it. */
  @Cron(CronExpression.EVERY_MINUTE, { utcOffset: 0 })
  unguarded(): void {}
}

@Injectable()
class NightlyJob {
  // 02:30 in Paris: on 2027-03-28 the clocks go from 02:00 to 03:00.
  @Cron('0 30 2 * * *', { timeZone: 'Europe/Paris' })
  @DistributedLock({ key: 'nightly', ttlMs: MINUTE, dst: { springForward: 'run-at-end-of-gap', fallBack: 'once' } })
  nightly(): void {}
}

@Module({
  imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot({ host: 'redis.invalid' })],
  providers: [ReportJobs],
})
class AppModule {}

@Module({
  imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot({ host: 'redis.invalid' })],
  providers: [NightlyJob],
})
class NightlyModule {}

/** The README's `MyService.heartbeat` (its quick start): every 10 seconds. */
@Injectable()
class HeartbeatJobs {
  @Cron(CronExpression.EVERY_10_SECONDS)
  @DistributedLock('cron:heartbeat', 5000)
  async heartbeat(): Promise<void> {}
}

@Module({
  imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot({ host: 'redis.invalid' })],
  providers: [HeartbeatJobs],
})
class HeartbeatModule {}

/** Jobs a provider inherits from its base class: one guarded, one not. */
class BaseJobs {
  @Cron(CronExpression.EVERY_MINUTE, { utcOffset: 0 })
  @DistributedLock('inherited', MINUTE)
  guardedInBase(): void {}

  @Cron(CronExpression.EVERY_MINUTE, { utcOffset: 0 })
  unguardedInBase(): void {}
}

@Injectable()
class InheritingJobs extends BaseJobs {}

@Module({
  imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot({ host: 'redis.invalid' })],
  providers: [InheritingJobs],
})
class InheritingModule {}

/** The failures these tests plan are logged by Nest's scheduler and the retry policy: not printed here. */
const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
const app = () => Test.createTestingModule({ imports: [AppModule] }).setLogger(quiet);
const advance = (ms: number) => jest.advanceTimersByTimeAsync(ms);

describe('FleetSimulator', () => {
  let fleet: FleetSimulator | undefined;
  beforeEach(() => {
    jest.useFakeTimers({ now: START });
    plan.failFirstAttempt.clear();
    plan.attempts.clear();
    plan.runMs = 0;
  });
  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
    jest.useRealTimers();
  });

  it('runs each occurrence of a guarded job once across three replicas, and says where', async () => {
    fleet = await FleetSimulator.start({ replicas: 3, app });
    await advance(10 * MINUTE);

    const report = fleet.expectEachOccurrenceOnce('ReportJobs.everyMinute', START + MINUTE, START + 10 * MINUTE);
    expect(report.occurrences).toHaveLength(10);
    for (const { runs } of report.occurrences) {
      expect(runs).toEqual([expect.objectContaining({ outcome: 'ok', withoutLock: false, trigger: 'schedule' })]);
    }
  });

  it('fails on an unguarded job, naming each occurrence and the replicas that ran it', async () => {
    fleet = await FleetSimulator.start({ replicas: 3, app });
    await advance(2 * MINUTE);

    expect(() => fleet!.expectEachOccurrenceOnce('ReportJobs.unguarded', START + MINUTE, START + 2 * MINUTE)).toThrow(
      OccurrenceNotOnceError,
    );
    const report = fleet.report('ReportJobs.unguarded', START + MINUTE, START + 2 * MINUTE);
    expect(report.problems).toEqual([
      '2027-01-04T00:01:00.000Z ran 3 times: replica-1 (schedule, attempt 1, without a lock), ' +
        'replica-2 (schedule, attempt 1, without a lock), replica-3 (schedule, attempt 1, without a lock)',
      '2027-01-04T00:02:00.000Z ran 3 times: replica-1 (schedule, attempt 1, without a lock), ' +
        'replica-2 (schedule, attempt 1, without a lock), replica-3 (schedule, attempt 1, without a lock)',
    ]);
  });

  it('shows what the fail mode does while Redis is down: open runs on every replica, closed on none', async () => {
    fleet = await FleetSimulator.start({ replicas: 2, app });
    await advance(MINUTE - 1_000);
    fleet.redisDown();
    await advance(MINUTE); // the 00:01 occurrence, fail-open
    fleet.redisUp();
    await advance(MINUTE);
    expect(fleet.report('ReportJobs.everyMinute', START + MINUTE, START + 2 * MINUTE).problems).toEqual([
      '2027-01-04T00:01:00.000Z ran 2 times: replica-1 (schedule, attempt 1, without a lock), ' +
        'replica-2 (schedule, attempt 1, without a lock)',
    ]);

    await fleet.close();
    fleet = await FleetSimulator.start({ replicas: 2, app, lockOptions: { failMode: 'closed' } });
    fleet.redisDown();
    await advance(MINUTE);
    fleet.redisUp();
    expect(fleet.report('ReportJobs.everyMinute', START + 3 * MINUTE, START + 3 * MINUTE).problems).toEqual([
      '2027-01-04T00:03:00.000Z never ran',
    ]);
  });

  it('catches up the occurrences missed while the whole fleet was down, once each', async () => {
    fleet = await FleetSimulator.start({ replicas: 3, app });
    await advance(5 * MINUTE); // 00:05 runs
    for (const replica of fleet.replicas) replica.freeze();
    await advance(20 * MINUTE); // 00:10 to 00:25 are due with no replica to run them
    expect(fleet.report('ReportJobs.everyFiveMinutes', START + 10 * MINUTE, START + 25 * MINUTE).problems).toHaveLength(
      4,
    );
    for (const replica of fleet.replicas) replica.thaw();
    await advance(MINUTE);

    const report = fleet.expectEachOccurrenceOnce(
      'ReportJobs.everyFiveMinutes',
      START + 5 * MINUTE,
      START + 25 * MINUTE,
    );
    expect(report.occurrences.map(({ runs }) => runs[0].trigger)).toEqual([
      'schedule',
      'catch-up',
      'catch-up',
      'catch-up',
      'catch-up',
    ]);
  });

  it('retries a failed attempt, so each occurrence still completes once', async () => {
    plan.failFirstAttempt.add(START + 10 * MINUTE);
    fleet = await FleetSimulator.start({ replicas: 2, app });
    await advance(16 * MINUTE);

    const report = fleet.expectEachOccurrenceOnce(
      'ReportJobs.everyFiveMinutes',
      START + 5 * MINUTE,
      START + 15 * MINUTE,
    );
    expect(report.occurrences[1].runs.map(({ trigger, attempt, outcome }) => [trigger, attempt, outcome])).toEqual([
      ['schedule', 1, 'error'],
      ['retry', 2, 'ok'],
    ]);
  });

  it('runs again, once, an occurrence whose replica was killed mid-run', async () => {
    plan.runMs = 30_000;
    fleet = await FleetSimulator.start({ replicas: 3, app });
    await advance(5 * MINUTE + 10_000); // the 00:05 run is 10 s in
    const running = fleet.store.events.find(
      (event) => event.type === 'acquired' && event.job === 'ReportJobs.everyFiveMinutes',
    );
    fleet.replica(running!.replica).kill();
    await advance(4 * MINUTE);

    const report = fleet.expectEachOccurrenceOnce(
      'ReportJobs.everyFiveMinutes',
      START + 5 * MINUTE,
      START + 5 * MINUTE,
    );
    expect(report.occurrences[0].runs).toEqual([
      expect.objectContaining({ trigger: 'recovery', attempt: 2, outcome: 'ok' }),
    ]);
    expect(report.occurrences[0].runs[0].replica).not.toBe(running!.replica);
  });

  it('fires a replica whose clock runs 15 s ahead 15 s early by the fleet: it serves each occurrence, none twice', async () => {
    fleet = await FleetSimulator.start({ replicas: 3, app });
    fleet.replica('replica-3').skewClock(15_000);
    await advance(5 * MINUTE);

    const report = fleet.expectEachOccurrenceOnce('ReportJobs.everyMinute', START + MINUTE, START + 5 * MINUTE);
    expect(report.occurrences.map(({ runs }) => runs.map((run) => run.replica))).toEqual([
      ['replica-3'],
      ['replica-3'],
      ['replica-3'],
      ['replica-3'],
      ['replica-3'],
    ]);
  });

  it('shows an occurrence lost to a replica more than a period ahead: it serves the next one first', async () => {
    fleet = await FleetSimulator.start({ replicas: 2, app });
    fleet.replica('replica-2').skewClock(70_000); // 00:02 by its clock at 00:00:50 by the fleet's
    await advance(3 * MINUTE);

    // The on-time replica's 00:01 is refused: a later occurrence of the job was served already.
    expect(fleet.report('ReportJobs.everyMinute', START + MINUTE, START + 3 * MINUTE).problems).toEqual([
      '2027-01-04T00:01:00.000Z never ran',
    ]);
  });

  it("passes docs/testing.md's example: one replica killed, another with its clock 4 s ahead", async () => {
    fleet = await FleetSimulator.start({
      replicas: 3,
      app: () => Test.createTestingModule({ imports: [HeartbeatModule] }),
    });
    await advance(60_000);
    fleet.replica(0).kill();
    fleet.replica(1).skewClock(4_000);
    await advance(60_000);
    fleet.expectEachOccurrenceOnce('HeartbeatJobs.heartbeat', START + 10_000, START + 120_000);
  });

  it('keeps each occurrence once after one replica shuts down', async () => {
    fleet = await FleetSimulator.start({ replicas: 3, app });
    await advance(3 * MINUTE);
    await fleet.replica(0).shutdown();
    await advance(3 * MINUTE);

    fleet.expectEachOccurrenceOnce('ReportJobs.everyMinute', START + MINUTE, START + 6 * MINUTE);
    fleet.expectEachOccurrenceOnce('ReportJobs.everyFiveMinutes', START + 5 * MINUTE, START + 5 * MINUTE);
  });

  it('keeps a killed replica dead through thaw(), and brings a frozen one back as it was', async () => {
    fleet = await FleetSimulator.start({ replicas: 2, app });
    fleet.replica(0).kill();
    fleet.replica(1).disconnect();
    fleet.replica(1).freeze();
    fleet.replica(0).thaw();
    fleet.replica(1).thaw();
    expect(fleet.replicas.map((replica) => replica.reachability)).toEqual(['gone', 'unreachable']);
  });

  it("lives the night the clocks go forward in the job's zone: the 02:30 that does not exist runs once at 03:00", async () => {
    jest.setSystemTime(Date.parse('2027-03-27T01:00:00Z'));
    fleet = await FleetSimulator.start({
      replicas: 2,
      app: () => Test.createTestingModule({ imports: [NightlyModule] }),
    });
    await advance(2 * 24 * 60 * MINUTE);

    const report = fleet.expectEachOccurrenceOnce(
      'NightlyJob.nightly',
      Date.parse('2027-03-27T01:00:00Z'),
      Date.parse('2027-03-29T01:00:00Z'),
    );
    expect(report.occurrences.map(({ occurrence }) => occurrence.toISOString())).toEqual([
      '2027-03-27T01:30:00.000Z', // 02:30 CET
      '2027-03-28T01:00:00.000Z', // 03:00 CEST, the end of the gap
      '2027-03-29T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('watches the @Cron methods a provider inherits, guarded or not', async () => {
    fleet = await FleetSimulator.start({
      replicas: 2,
      app: () => Test.createTestingModule({ imports: [InheritingModule] }),
    });
    await advance(2 * MINUTE);

    fleet.expectEachOccurrenceOnce('BaseJobs.guardedInBase', START + MINUTE, START + 2 * MINUTE);
    expect(fleet.report('InheritingJobs.unguardedInBase', START + MINUTE, START + 2 * MINUTE).problems).toEqual([
      expect.stringMatching(/^2027-01-04T00:01:00.000Z ran 2 times: replica-1 .*, replica-2 /),
      expect.stringMatching(/^2027-01-04T00:02:00.000Z ran 2 times: replica-1 .*, replica-2 /),
    ]);
  });

  it('refuses a fleet size out of range and a job the app does not have, naming them', async () => {
    await expect(FleetSimulator.start({ replicas: 0, app })).rejects.toThrow(/replicas.*an integer from 1 to 50/);
    fleet = await FleetSimulator.start({ replicas: 1, app });
    expect(() => fleet!.report('ReportJobs.nope', START, START + MINUTE)).toThrow(/ReportJobs.everyMinute/);
  });
});
