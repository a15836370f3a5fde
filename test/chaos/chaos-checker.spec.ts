import { checkRecords } from './chaos-checker';
import {
  CHAOS_JOBS,
  type DriverRecord,
  type ExecutionEndRecord,
  type ExecutionStartRecord,
  type ReplicaLifecycleRecord,
  type ReplicaRecord,
} from './execution-log';

// The checker on hand-made logs: each rule must catch what it is meant to catch.
// Monotonic ms = wall ms - 1_000_000, no clock skew, TTL 1500 ms, settle 2000 ms.
const OFFSET = 1_000_000;
const EVERY_SECOND = CHAOS_JOBS.everySecond.key;
const EVERY_5_SECONDS = CHAOS_JOBS.everyFiveSeconds.key;
const TTL = 1_500;
const SETTLE = 2_000;

type Run = { driver: DriverRecord[]; replicas: ReplicaRecord[] };

function execution(
  replica: string,
  pid: number,
  tick: number,
  token: number | null,
  start: number,
  end: number | null,
  outcome: ExecutionEndRecord['outcome'] = 'completed',
  lastOk: number | null = end,
  job: string = EVERY_SECOND,
): ReplicaRecord[] {
  const exec = `${replica}:${pid}:${job}@${tick}:${start}`;
  const started: ExecutionStartRecord = {
    type: 'start',
    exec,
    job,
    replica,
    pid,
    tick,
    token,
    withoutRedis: token === null,
    start,
    acquired: start - 1,
  };
  if (end === null) return [started];
  return [started, { type: 'end', exec, replica, pid, outcome, end, lastOk }];
}

/** Runs of the every-5-seconds job, which have a job, token and end of their own. */
function everyFive(
  replica: string,
  pid: number,
  tick: number,
  token: number | null,
  start: number,
  end: number | null,
): ReplicaRecord[] {
  return execution(replica, pid, tick, token, start, end, 'completed', end, EVERY_5_SECONDS);
}

/** 20 s of healthy ticks of both jobs on replica r1 (pid 11), r2 (pid 21) standing by. */
function healthyRun(): Run {
  const replicas: ReplicaRecord[] = [
    { type: 'ready', replica: 'r1', pid: 11, at: 500, wallMinusMonoMs: OFFSET },
    { type: 'ready', replica: 'r2', pid: 21, at: 500, wallMinusMonoMs: OFFSET },
  ];
  for (let second = 1; second <= 21; second++) {
    replicas.push(
      ...execution('r1', 11, OFFSET + second * 1_000, 100 + second, second * 1_000 + 2, second * 1_000 + 300),
    );
    if (second % 5 === 0) {
      replicas.push(
        ...everyFive('r1', 11, OFFSET + second * 1_000, 500 + second, second * 1_000 + 5, second * 1_000 + 205),
      );
    }
  }
  const driver: DriverRecord[] = [
    {
      type: 'run',
      at: 0,
      wallMinusMonoMs: OFFSET,
      ttlMs: TTL,
      settleMs: SETTLE,
      seed: 1,
      redisPort: 6390,
      replicas: [
        { id: 'r1', skewMs: 0 },
        { id: 'r2', skewMs: 0 },
      ],
      faketime: null,
      command: 'test',
    },
    { type: 'steady', start: 600, end: 21_500 },
    { type: 'stop', at: 21_600 },
    {
      type: 'exit',
      replica: 'r1',
      pid: 11,
      at: 21_610,
      code: null,
      signal: 'SIGKILL',
      expected: true,
      killedAt: 21_600,
      terminatedAt: null,
    },
    {
      type: 'exit',
      replica: 'r2',
      pid: 21,
      at: 21_610,
      code: null,
      signal: 'SIGKILL',
      expected: true,
      killedAt: 21_600,
      terminatedAt: null,
    },
  ];
  return { driver, replicas };
}

const check = (run: Run) => checkRecords('test', run.driver, run.replicas);
const tick = (second: number) => OFFSET + second * 1_000;
const withoutTick = (run: Run, second: number, job: string = EVERY_SECOND): Run => ({
  ...run,
  replicas: run.replicas.filter(
    (record) => !('exec' in record) || !record.exec.startsWith(`r1:11:${job}@${tick(second)}:`),
  ),
});

describe('the chaos checker', () => {
  it('finds nothing wrong in a healthy run, and checks the ticks of both jobs', () => {
    const report = check(healthyRun());
    expect(report.ticks.byJob).toEqual([
      { job: EVERY_SECOND, executed: 21, checked: expect.any(Number) },
      { job: EVERY_5_SECONDS, executed: 4, checked: 4 },
    ]);
    expect(report.ticks.byJob[0].checked).toBeGreaterThanOrEqual(18);
    // The same second run by both jobs, at the same time, under their own locks: no duplicate, no overlap.
    expect(report.duplicates).toEqual({ violations: [], excused: 0, reruns: 0, offSchedule: [] });
    expect(report.duplicates.violations).toEqual([]);
    expect(report.overlaps.violations).toEqual([]);
    expect(report.tokenOrder.violations).toEqual([]);
    expect(report.missedTicks.violations).toEqual([]);
    expect(report.anomalies).toEqual([]);
  });

  it('reports a tick run twice, unless a run of it started in a Redis window', () => {
    const run = healthyRun();
    run.replicas.push(...execution('r2', 21, tick(5), null, 5_600, 5_700));
    expect(check(run).duplicates.violations).toHaveLength(1);

    run.driver.push({
      type: 'fault',
      kind: 'redis-pause',
      target: 'redis',
      pid: 0,
      start: 5_500,
      end: 5_550,
      detail: '',
    });
    expect(check(run).duplicates.violations).toEqual([]);
    expect(check(run).duplicates.excused).toBe(1);

    run.driver.splice(-1, 1, {
      type: 'fault',
      kind: 'replica-stop',
      target: 'r1',
      pid: 11,
      start: 5_500,
      end: 5_550,
      detail: '',
    });
    expect(check(run).duplicates.violations).toHaveLength(1);
  });

  it('reports an overlap unless the earlier run lost its lock, had the lower token and stopped checking in time', () => {
    const overlapping = (outcome: ExecutionEndRecord['outcome'], firstToken: number, lastOk: number) => {
      const run = withoutTick(withoutTick(withoutTick(healthyRun(), 8), 9), 10);
      run.replicas.push(...execution('r1', 11, tick(8), firstToken, 8_002, 10_900, outcome, lastOk));
      run.replicas.push(...execution('r2', 21, tick(9), 109, 9_700, 9_900));
      return check(run).overlaps;
    };
    expect(overlapping('completed', 108, 10_900).violations).toHaveLength(1);
    expect(overlapping('lost-lock', 108, 8_100).violations).toEqual([]);
    expect(overlapping('lost-lock', 108, 8_100).fenced).toHaveLength(1);
    expect(overlapping('lost-lock', 300, 8_100).violations).toHaveLength(1);
    expect(overlapping('lost-lock', 108, 9_800).violations).toHaveLength(1);
  });

  it('ends a run without an end record when its process was killed, and flags one that was not', () => {
    const run = withoutTick(healthyRun(), 12);
    run.replicas.push(...execution('r1', 11, tick(12), 112, 12_002, null));
    run.driver.push({
      type: 'exit',
      replica: 'r1',
      pid: 11,
      at: 12_100,
      code: null,
      signal: 'SIGKILL',
      expected: true,
      killedAt: 12_090,
      terminatedAt: null,
    });
    run.replicas.push(...execution('r2', 21, tick(12) + 500, 113, 12_095, 12_200));
    expect(check(run).overlaps.violations).toEqual([]);
    expect(check(run).executions.crashed).toBe(1);

    run.driver = run.driver.filter((record) => record.type !== 'exit' || record.pid !== 11);
    run.driver.push({
      type: 'exit',
      replica: 'r1',
      pid: 11,
      at: 12_100,
      code: 1,
      signal: null,
      expected: false,
      killedAt: null,
      terminatedAt: null,
    });
    const report = check(run);
    expect(report.anomalies).toContainEqual(expect.stringContaining('has no end, but the driver never killed pid 11'));
    expect(report.anomalies).toContainEqual(expect.stringContaining('replica r1 (pid 11) exited by itself'));
  });

  it('reports fencing tokens that do not grow in start order', () => {
    const run = healthyRun();
    const start = run.replicas.find((record) => record.type === 'start' && record.tick === tick(6))!;
    (start as ExecutionStartRecord).token = 90;
    expect(check(run).tokenOrder.violations).toHaveLength(1);
  });

  it('reports a missed tick while healthy, but not one due inside a fault window', () => {
    const run = withoutTick(healthyRun(), 14);
    expect(check(run).missedTicks.violations).toEqual([{ job: EVERY_SECOND, tick: tick(14) }]);

    run.driver.push({
      type: 'fault',
      kind: 'replica-kill',
      target: 'r1',
      pid: 11,
      start: 13_500,
      end: 13_600,
      detail: '',
    });
    expect(check(run).missedTicks.violations).toEqual([]);
  });

  it('expects a tick when the fastest replica fires it', () => {
    const run = healthyRun();
    (run.driver[0] as Extract<DriverRecord, { type: 'run' }>).replicas[1].skewMs = 800;
    (run.replicas[1] as ReplicaLifecycleRecord).wallMinusMonoMs = OFFSET + 800;
    // r2 is 0.8 s ahead: tick 21 is due at 20.2 s on the monotonic clock, inside the steady phase.
    expect(check(run).missedTicks.violations).toEqual([]);
    expect(check(withoutTick(run, 21)).missedTicks.violations).toEqual([{ job: EVERY_SECOND, tick: tick(21) }]);
  });

  it('requires a run frozen past its TTL to end lost-lock', () => {
    const frozen = (outcome: ExecutionEndRecord['outcome']) => {
      const run = withoutTick(healthyRun(), 16);
      run.replicas.push(...execution('r1', 11, tick(16), 116, 16_002, 18_620, outcome, 16_050));
      run.driver.push({
        type: 'fault',
        kind: 'replica-stop',
        target: 'r1',
        pid: 11,
        start: 16_100,
        end: 18_600,
        detail: '',
      });
      return check(run).stopCaught;
    };
    expect(frozen('lost-lock')).toMatchObject({ checked: 1, violations: [] });
    expect(frozen('completed').violations).toHaveLength(1);
  });

  it('flags a replica whose clock skew is not the one it was given', () => {
    const run = healthyRun();
    (run.driver[0] as Extract<DriverRecord, { type: 'run' }>).replicas[1].skewMs = 800;
    expect(check(run).anomalies).toContainEqual(
      expect.stringContaining('r2 was given a 800 ms clock skew but measured 0 ms'),
    );
  });

  describe('re-runs and never zero, for the every-5-seconds job (catch-up, retry, crash recovery)', () => {
    /** `records` with the start record of each execution of `second` marked as started by `trigger`, attempt `attempt`. */
    const as = (records: ReplicaRecord[], trigger: string, attempt: number): ReplicaRecord[] =>
      records.map((record) => (record.type === 'start' ? { ...record, trigger, attempt } : record));
    const failed = (records: ReplicaRecord[], outcome: ExecutionEndRecord['outcome']): ReplicaRecord[] =>
      records.map((record) => (record.type === 'end' ? { ...record, outcome } : record));

    it('counts a retry or a recovery of an occurrence as a re-run; the same attempt twice, or two completed runs, as a duplicate', () => {
      const run = withoutTick(healthyRun(), 10, EVERY_5_SECONDS);
      run.replicas.push(
        ...failed(everyFive('r1', 11, tick(10), 601, 10_005, 10_050), 'thrown'),
        ...as(everyFive('r2', 21, tick(10), 602, 10_400, 10_600), 'retry', 2),
      );
      const report = check(run);
      expect(report.duplicates).toMatchObject({ violations: [], reruns: 1 });
      expect(report.neverZero).toMatchObject({ violations: [], byTrigger: { schedule: 3, retry: 1 } });

      run.replicas.push(...as(everyFive('r2', 21, tick(10), 603, 10_700, 10_800), 'retry', 2));
      expect(check(run).duplicates.violations).toHaveLength(1);
    });

    it('reports an every-5-seconds occurrence without a completed run, fault windows included', () => {
      const run = withoutTick(healthyRun(), 10, EVERY_5_SECONDS);
      run.driver.push({
        type: 'fault',
        kind: 'fleet-kill',
        target: 'fleet',
        pid: 0,
        start: 9_000,
        end: 12_000,
        detail: '',
      });
      expect(check(run).neverZero.violations).toEqual([{ tick: tick(10), executions: [] }]);

      run.replicas.push(...as(everyFive('r2', 21, tick(10), 602, 12_100, 12_300), 'catch-up', 1));
      expect(check(run).neverZero).toMatchObject({ violations: [], byTrigger: { 'catch-up': 1 } });
    });

    it('accepts the stated reasons: Redis lost its data, attempts exhausted, the retry window closed', () => {
      const restart = withoutTick(healthyRun(), 10, EVERY_5_SECONDS);
      restart.driver.push({
        type: 'fault',
        kind: 'redis-restart',
        target: 'redis',
        pid: 0,
        start: 9_500,
        end: 10_500,
        detail: '',
      });
      expect(check(restart).neverZero).toMatchObject({ violations: [], redisRestart: 1 });

      const exhausted = withoutTick(healthyRun(), 10, EVERY_5_SECONDS);
      Object.assign(exhausted.driver[0], { failureShare: 1 }); // every attempt fails on purpose
      expect(check(exhausted).neverZero).toMatchObject({ violations: [], attemptsExhausted: 1 });

      const failedThrice = withoutTick(healthyRun(), 10, EVERY_5_SECONDS);
      failedThrice.replicas.push(
        ...failed(everyFive('r1', 11, tick(10), 601, 10_005, 12_000), 'lost-lock'),
        ...as(failed(everyFive('r1', 11, tick(10), 602, 12_300, 12_310), 'thrown'), 'retry', 2),
        ...as(failed(everyFive('r2', 21, tick(10), 603, 12_900, 12_910), 'thrown'), 'retry', 3),
      );
      expect(check(failedThrice).neverZero).toMatchObject({ violations: [], attemptsExhausted: 1 });

      const late = withoutTick(healthyRun(), 10, EVERY_5_SECONDS);
      late.replicas.push(...failed(everyFive('r1', 11, tick(10), 601, 10_005, 14_950), 'lost-lock'));
      expect(check(late).neverZero).toMatchObject({ violations: [], retryWindowClosed: 1 });
    });
  });

  describe('late-timer: a replica whose event loop was blocked across an every-5-seconds occurrence', () => {
    // r2's loop is blocked from 9.7 s to 10.9 s, across occurrence 10; r1 runs occurrence 10 on time.
    const lateTimer = (): Run => {
      const run = healthyRun();
      run.driver.push({
        type: 'fault',
        kind: 'late-timer',
        target: 'r2',
        pid: 21,
        start: 9_700,
        end: 10_900,
        occurrence: tick(10),
        detail: '',
      });
      return run;
    };

    it('reports the late firing named after the next second: occurrence 10 runs twice, under a tick off the schedule', () => {
      const run = lateTimer();
      // Named by rounding its late clock (10.9 s) to the nearest second: not refused as already served.
      run.replicas.push(...everyFive('r2', 21, tick(11), 600, 10_905, 11_100));
      const report = check(run);
      expect(report.duplicates.violations).toHaveLength(1);
      expect(report.duplicates.violations[0].map((execution) => [execution.job, execution.occurrence])).toEqual([
        [EVERY_5_SECONDS, tick(10)],
        [EVERY_5_SECONDS, tick(10)],
      ]);
      expect(report.duplicates.offSchedule).toMatchObject([{ replica: 'r2', tick: tick(11) }]);
    });

    it('accepts the late firing named after occurrence 10 and refused: nothing runs twice', () => {
      const report = check(lateTimer());
      expect(report.duplicates).toEqual({ violations: [], excused: 0, reruns: 0, offSchedule: [] });
      expect(report.missedTicks.violations).toEqual([]);
    });

    it('excuses a missed every-second tick in its window, but never the every-5-seconds occurrence it straddles', () => {
      const run = withoutTick(withoutTick(lateTimer(), 11), 10, EVERY_5_SECONDS);
      expect(check(run).missedTicks.violations).toEqual([]);
      expect(check(run).neverZero.violations).toEqual([{ tick: tick(10), executions: [] }]);
    });
  });

  describe('replica-term: r1 gets SIGTERM at 8.1 s in the middle of tick 8, and is back as pid 12 at 11.5 s', () => {
    /**
     * `tick8` is r1's (pid 11) run of tick 8, under way at SIGTERM; `exit` is when pid 11 exited.
     * r2 runs tick 11 and the every-5-seconds occurrence 10; the restarted r1 runs from tick 12 on.
     */
    const rollingRestart = (tick8: ReplicaRecord[], exit: { at: number; killedAt?: number }): Run => {
      let run = healthyRun();
      for (const second of [8, 9, 10, 11]) run = withoutTick(run, second);
      run = withoutTick(run, 10, EVERY_5_SECONDS);
      const restarted = new Set(
        run.replicas
          .filter((record): record is ExecutionStartRecord => record.type === 'start' && record.start >= 12_000)
          .map((record) => record.exec),
      );
      for (const record of run.replicas) if ('exec' in record && restarted.has(record.exec)) record.pid = 12;
      run.replicas.push(
        ...tick8,
        { type: 'term', replica: 'r1', pid: 11, at: 8_105 },
        { type: 'ready', replica: 'r1', pid: 12, at: 11_500, wallMinusMonoMs: OFFSET },
        ...execution('r2', 21, tick(11), 111, 11_002, 11_300),
        ...everyFive('r2', 21, tick(10), 510, 10_005, 10_205),
      );
      run.driver = run.driver.map((record) =>
        record.type === 'exit' && record.pid === 11 ? { ...record, pid: 12 } : record,
      );
      run.driver.push(
        {
          type: 'exit',
          replica: 'r1',
          pid: 11,
          at: exit.at,
          code: null,
          signal: exit.killedAt === undefined ? 'SIGTERM' : 'SIGKILL',
          expected: true,
          killedAt: exit.killedAt ?? null,
          terminatedAt: 8_100,
        },
        {
          type: 'fault',
          kind: 'replica-term',
          target: 'r1',
          pid: 11,
          start: 8_100,
          end: 11_500,
          midJob: true,
          detail: '',
        },
      );
      return run;
    };

    it('accepts a drain: the run in flight completes holding its lock, then the process exits by itself', () => {
      const report = check(rollingRestart(execution('r1', 11, tick(8), 108, 8_002, 10_600), { at: 10_650 }));
      expect(report.drain).toEqual({ terms: 1, inFlight: 1, violations: [], maxExitMs: 2_550 });
      expect(report.overlaps.violations).toEqual([]);
      expect(report.duplicates.violations).toEqual([]);
      expect(report.missedTicks.violations).toEqual([]); // ticks 9 and 10 were skipped: the lock was held
      expect(report.anomalies).toEqual([]);
    });

    it('reports the next holder starting while the SIGTERMed run still works, even when that run lost its lock and had the lower token', () => {
      // The lock was deleted at shutdown: r2 takes tick 9 at 9.002 s while r1 works until 10.6 s.
      const run = rollingRestart(execution('r1', 11, tick(8), 108, 8_002, 10_600), { at: 10_650 });
      run.replicas.push(...execution('r2', 21, tick(9), 109, 9_002, 9_300));
      expect(check(run).overlaps.violations).toHaveLength(1);

      const fencedOtherwise = rollingRestart(execution('r1', 11, tick(8), 108, 8_002, 10_600, 'lost-lock', 8_900), {
        at: 10_650,
      });
      fencedOtherwise.replicas.push(...execution('r2', 21, tick(9), 109, 9_002, 9_300));
      const report = check(fencedOtherwise);
      expect(report.overlaps.fenced).toEqual([]);
      expect(report.overlaps.violations).toHaveLength(1);
      expect(report.drain.violations).toMatchObject([{ reason: 'in flight at SIGTERM, ended lost-lock' }]);
    });

    it('reports a run cut off by the shutdown, not as an anomaly', () => {
      const run = rollingRestart(execution('r1', 11, tick(8), 108, 8_002, null), { at: 8_150 });
      run.replicas.push(...execution('r2', 21, tick(9), 109, 9_002, 9_300));
      const report = check(run);
      expect(report.drain.violations).toMatchObject([
        { reason: 'in flight at SIGTERM, cut off: no end record before its process exited' },
      ]);
      expect(report.executions.crashed).toBe(1);
      expect(report.overlaps.violations).toEqual([]); // it ended, cut off, at 8.15 s
      expect(report.anomalies).toEqual([]);
    });

    it('reports a run that acquired its lock after the replica received SIGTERM', () => {
      const run = rollingRestart(execution('r1', 11, tick(8), 108, 8_002, 8_300), { at: 9_400 });
      run.replicas.push(...execution('r1', 11, tick(9), 109, 9_002, 9_300));
      expect(check(run).drain.violations).toMatchObject([
        { reason: 'acquired its lock after its replica received SIGTERM' },
      ]);
    });

    it('reports a replica that had to be SIGKILLed because it did not exit after SIGTERM', () => {
      const report = check(
        rollingRestart(execution('r1', 11, tick(8), 108, 8_002, 10_600), { at: 18_110, killedAt: 18_100 }),
      );
      expect(report.drain.violations).toMatchObject([
        { reason: 'pid 11 had not exited 10000 ms after SIGTERM and was SIGKILLed' },
      ]);
      expect(report.drain.maxExitMs).toBeNull();
    });
  });
});
