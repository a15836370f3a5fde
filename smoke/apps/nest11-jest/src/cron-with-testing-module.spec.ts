// A decorated @Cron service on two replicas of one in-memory fleet, its schedule driven by Jest's
// fake timers: each faked second runs once, on one replica, and the other skips it as served.
import { Injectable } from '@nestjs/common';
import { Cron, CronExpression, ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test, type TestingModule } from '@nestjs/testing';
import { DistributedLock } from 'dpa-distributed-lock-cron';
import { DistributedLockTestingModule, InMemoryLockStore } from 'dpa-distributed-lock-cron/testing';

const START = Date.parse('2030-01-01T00:00:00.000Z');

@Injectable()
class EverySecondJobs {
  readonly calls = { lockBelowCron: 0, lockAboveCron: 0 };

  @Cron(CronExpression.EVERY_SECOND, { name: 'lock-below-cron' })
  @DistributedLock('smoke:lock-below-cron', 5_000)
  lockBelowCron(): void {
    this.calls.lockBelowCron++;
  }

  @DistributedLock('smoke:lock-above-cron', 5_000)
  @Cron(CronExpression.EVERY_SECOND, { name: 'lock-above-cron' })
  lockAboveCron(): void {
    this.calls.lockAboveCron++;
  }
}

const JOBS = ['EverySecondJobs.lockBelowCron', 'EverySecondJobs.lockAboveCron'] as const;

describe('a @Cron + @DistributedLock service through DistributedLockTestingModule, on fake timers', () => {
  const store = new InMemoryLockStore(); // shared: the two testing modules are replicas of one fleet
  let replicas: TestingModule[];

  beforeEach(async () => {
    jest.useFakeTimers({ now: START });
    replicas = await Promise.all(
      ['a', 'b'].map((replica) =>
        Test.createTestingModule({
          imports: [ScheduleModule.forRoot(), DistributedLockTestingModule.forRoot({ store, replica })],
          providers: [EverySecondJobs],
        }).compile(),
      ),
    );
    await Promise.all(replicas.map((replica) => replica.init()));
  });

  afterEach(async () => {
    await Promise.all(replicas.map((replica) => replica.close()));
    store.reset();
    jest.useRealTimers();
  });

  it('schedules both jobs on both replicas, whichever side of @Cron the lock sits on', () => {
    for (const replica of replicas) {
      const registry = replica.get(SchedulerRegistry);
      expect([...registry.getCronJobs().keys()].sort()).toEqual(['lock-above-cron', 'lock-below-cron']);
    }
  });

  it('runs each faked second once across the replicas, and the other replica skips it as served', () => {
    for (let second = 1; second <= 5; second++) {
      jest.advanceTimersByTime(1_000);
      for (const job of JOBS) {
        // A synchronous handler has run and released its lock when advanceTimersByTime returns.
        expect(store.runs(job)).toHaveLength(second);
        expect(store.skips(job)).toHaveLength(second);
      }
    }

    for (const job of JOBS) {
      const runs = store.runs(job);
      expect(runs.map((run) => run.tick)).toEqual([1, 2, 3, 4, 5].map((second) => START + second * 1_000));
      expect(runs.map((run) => run.outcome)).toEqual(Array(5).fill('ok'));
      expect(store.skips(job).map((skip) => skip.reason)).toEqual(Array(5).fill('tick-served'));
      // Each tick: one replica ran it, the other skipped it.
      for (const skip of store.skips(job)) {
        const run = runs.find((candidate) => candidate.tick === skip.tick);
        expect(run?.replica).toBeDefined();
        expect(skip.replica).not.toBe(run?.replica);
      }
    }
    const calls = replicas.map((replica) => replica.get(EverySecondJobs).calls);
    expect(calls.reduce((sum, { lockBelowCron }) => sum + lockBelowCron, 0)).toBe(5);
    expect(calls.reduce((sum, { lockAboveCron }) => sum + lockAboveCron, 0)).toBe(5);
  });

  it('skips a second that a direct call already served', () => {
    const [a, b] = replicas.map((replica) => replica.get(EverySecondJobs));
    void a.lockBelowCron(); // serves the current occurrence, START itself
    void b.lockBelowCron();
    jest.advanceTimersByTime(1_000);
    expect(store.runs(JOBS[0]).map((run) => run.tick)).toEqual([START, START + 1_000]);
    expect(store.skips(JOBS[0]).map((skip) => skip.reason)).toEqual(['tick-served', 'tick-served']);
  });
});
