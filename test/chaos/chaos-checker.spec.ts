import { checkRecords } from './chaos-checker';
import type {
  DriverRecord,
  ExecutionEndRecord,
  ExecutionStartRecord,
  ReplicaLifecycleRecord,
  ReplicaRecord,
} from './execution-log';

// The checker on hand-made logs: each rule must catch what it is meant to catch.
// Monotonic ms = wall ms - 1_000_000, no clock skew, TTL 1500 ms, settle 2000 ms.
const OFFSET = 1_000_000;
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
): ReplicaRecord[] {
  const exec = `${replica}:${pid}:${tick}:${start}`;
  const started: ExecutionStartRecord = {
    type: 'start',
    exec,
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

/** 20 s of healthy ticks on replica r1 (pid 11), r2 (pid 21) standing by. */
function healthyRun(): Run {
  const replicas: ReplicaRecord[] = [
    { type: 'ready', replica: 'r1', pid: 11, at: 500, wallMinusMonoMs: OFFSET },
    { type: 'ready', replica: 'r2', pid: 21, at: 500, wallMinusMonoMs: OFFSET },
  ];
  for (let second = 1; second <= 21; second++) {
    replicas.push(
      ...execution('r1', 11, OFFSET + second * 1_000, 100 + second, second * 1_000 + 2, second * 1_000 + 300),
    );
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
    },
  ];
  return { driver, replicas };
}

const check = (run: Run) => checkRecords('test', run.driver, run.replicas);
const tick = (second: number) => OFFSET + second * 1_000;
const withoutTick = (run: Run, second: number): Run => ({
  ...run,
  replicas: run.replicas.filter((record) => !('exec' in record) || !record.exec.startsWith(`r1:11:${tick(second)}:`)),
});

describe('the chaos checker', () => {
  it('finds nothing wrong in a healthy run, and checks its ticks', () => {
    const report = check(healthyRun());
    expect(report.ticks.checked).toBeGreaterThanOrEqual(18);
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
    expect(check(run).missedTicks.violations).toEqual([tick(14)]);

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
    expect(check(withoutTick(run, 21)).missedTicks.violations).toEqual([tick(21)]);
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
});
