/**
 * Checks the logs of a chaos run (see fault-driver.ts) against the library's guarantees.
 *
 * Executions: one per `start` record. Its interval is [start, end], where `end` is the time in its
 * `end` record or, for an execution killed before it could write one ("crashed"), the time the
 * driver sent SIGKILL to its process. Times are CLOCK_MONOTONIC, common to all processes.
 *
 * Windows: every fault has an exclusion window [fault start, fault end + TTL + settle], where the
 * fault ends when the replica is resumed or restarted and ready again, or Redis is resumed or
 * started again, and settle is 2 s by default. After a SIGKILL the dead holder's lock stays until
 * its TTL; after a Redis restart the state (last tick, fencing counter) is gone; while Redis is
 * frozen or down, fail-open replicas run without a lock.
 *
 * Checks:
 * 1. No tick executed twice. A tick executed several times is excused only when one of those
 *    executions started inside a Redis window (restart or pause); replica faults excuse nothing.
 * 2. No two executions overlap. A pair is excused when either started inside a Redis window.
 *    Otherwise the overlap is "fenced", and allowed, only when the execution that started first
 *    ended with lost-lock, its fencing token is lower than the other's, and its last passing
 *    `throwIfLost()` was before the other started. Any other overlap is a violation.
 * 3. Fencing tokens strictly increase in the order executions started (no exclusion; executions
 *    without a token, run fail-open, are left out).
 * 4. Every tick is executed. A tick T (a wall-clock second) is due on the monotonic clock when
 *    the replica with the fastest clock fires it: T - (driver's wall - monotonic offset) - that
 *    skew. Ticks due from 1 s after all replicas were ready to 1 s before the fault phase ended,
 *    outside every window (which also keeps at least one replica alive), must have an execution.
 * 5. An execution under way when its process was SIGSTOPped for longer than the TTL ends with
 *    lost-lock: it learns at its next `throwIfLost()` that its lock is gone.
 * 6. No anomalies: no execution ending in another error, no replica exiting unless the driver
 *    killed it, no execution without end on a process that was not killed, and each replica's
 *    measured clock skew within 100 ms of the one it was given.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DriverRecord,
  type ExecutionEndRecord,
  type ExecutionStartRecord,
  FAULT_KINDS,
  type FaultKind,
  readJsonLines,
  type ReplicaLifecycleRecord,
  type ReplicaRecord,
} from './execution-log';

/** The rules above, as printed with every report. */
export const EXCLUSION_RULES = [
  'Exclusion window of a fault: [fault start, fault end + TTL + settle]; a replica fault ends when the replica is resumed or restarted and ready, a Redis fault when Redis is resumed or started again.',
  '(1) duplicate ticks and (2) overlaps are excused only when an execution involved started inside a Redis (restart or pause) window; replica faults excuse nothing.',
  '(2) outside Redis windows an overlap is allowed only if the earlier execution ended lost-lock, has the lower fencing token, and its last passing throwIfLost() precedes the later start.',
  '(3) fencing tokens must strictly increase in start order, with no exclusion.',
  '(4) a tick is expected when the fastest-clock replica fires it 1 s or more after all replicas were ready, 1 s or more before the fault phase ended, and outside every fault window.',
  '(5) every execution under way when its replica was SIGSTOPped longer than the TTL must end lost-lock.',
  'A crashed execution (no end record) ends when the driver sent SIGKILL to its process.',
];

type FaultRecord = Extract<DriverRecord, { type: 'fault' }>;
type RunRecord = Extract<DriverRecord, { type: 'run' }>;

export interface Execution extends Omit<ExecutionStartRecord, 'type'> {
  outcome: ExecutionEndRecord['outcome'] | 'crashed';
  /** End record time, or the kill time for a crashed execution. */
  end: number;
  lastOk: number | null;
  error?: string;
}

export interface Window {
  kind: FaultKind;
  start: number;
  end: number;
  fault: FaultRecord;
}

export interface ChaosReport {
  runDir: string;
  run: RunRecord;
  durationMs: number;
  replicas: { id: string; skewMs: number; measuredSkewMs: number | null; processes: number }[];
  faults: Record<FaultKind, number>;
  /** Replica faults that hit a replica with an execution under way. */
  faultsMidJob: Record<'replica-kill' | 'replica-stop', number>;
  executions: {
    total: number;
    completed: number;
    lostLock: number;
    crashed: number;
    errors: number;
    withoutRedis: number;
    /** Lost-lock executions that no fault explains (e.g. a stall of the replica longer than the TTL). */
    lostLockUnexplained: number;
    /** Fail-open executions that started outside every Redis window. */
    withoutRedisWhileHealthy: number;
  };
  ticks: { executed: number; checked: number };
  duplicates: { violations: Execution[][]; excused: number };
  overlaps: { violations: [Execution, Execution][]; fenced: [Execution, Execution][]; excused: number };
  tokenOrder: { violations: [Execution, Execution][] };
  missedTicks: { violations: number[] };
  stopCaught: { checked: number; violations: Execution[]; maxNoticeDelayMs: number | null };
  anomalies: string[];
  windows: Window[];
}

/** Reads a run directory and checks it. */
export function checkRun(runDir: string): ChaosReport {
  const driver = readJsonLines<DriverRecord>(join(runDir, 'driver.jsonl'));
  const replicaRecords = readdirSync(runDir)
    .filter((name) => /^replica-.*\.jsonl$/.test(name))
    .flatMap((name) => readJsonLines<ReplicaRecord>(join(runDir, name)));
  return checkRecords(runDir, driver, replicaRecords);
}

/** Checks parsed records; split from `checkRun` so it can be fed hand-made logs. */
export function checkRecords(runDir: string, driver: DriverRecord[], replicaRecords: ReplicaRecord[]): ChaosReport {
  const run = driver.find((record): record is RunRecord => record.type === 'run');
  const steady = driver.find((record) => record.type === 'steady');
  const stop = driver.find((record) => record.type === 'stop');
  if (!run || !steady || steady.type !== 'steady' || !stop || stop.type !== 'stop') {
    throw new Error(`${runDir}: the driver log lacks its run, steady or stop record; the run did not finish`);
  }
  const faults = driver.filter((record): record is FaultRecord => record.type === 'fault');
  const exits = driver.filter((record) => record.type === 'exit');
  const anomalies: string[] = [];

  const windows: Window[] = faults.map((fault) => ({
    kind: fault.kind,
    start: fault.start,
    end: fault.end + run.ttlMs + run.settleMs,
    fault,
  }));
  const redisWindows = windows.filter((window) => window.kind.startsWith('redis'));
  const inside = (time: number, among: Window[]) => among.some((window) => time >= window.start && time <= window.end);

  // Executions, with crash times for those that never wrote an end.
  const ends = new Map<string, ExecutionEndRecord>();
  for (const record of replicaRecords) if (record.type === 'end') ends.set(record.exec, record);
  const killedAt = new Map<number, number>();
  for (const exit of exits) {
    if (exit.type !== 'exit') continue;
    if (exit.killedAt !== null) killedAt.set(exit.pid, exit.killedAt);
    else
      anomalies.push(
        `replica ${exit.replica} (pid ${exit.pid}) exited by itself (code ${exit.code}, signal ${exit.signal})`,
      );
  }
  const executions: Execution[] = replicaRecords
    .filter((record): record is ExecutionStartRecord => record.type === 'start')
    .map(({ type: _type, ...start }) => {
      const end = ends.get(start.exec);
      if (end) return { ...start, outcome: end.outcome, end: end.end, lastOk: end.lastOk, error: end.error };
      const crashedAt = killedAt.get(start.pid);
      if (crashedAt === undefined) {
        anomalies.push(`execution ${start.exec} has no end, but the driver never killed pid ${start.pid}`);
      }
      return { ...start, outcome: 'crashed' as const, end: crashedAt ?? stop.at, lastOk: null };
    })
    .sort((x, y) => x.start - y.start);
  for (const execution of executions.filter((candidate) => candidate.outcome === 'error')) {
    anomalies.push(`execution ${execution.exec} failed with: ${execution.error}`);
  }

  // Clock skews, as measured by the replicas themselves.
  const lifecycle = replicaRecords.filter((record): record is ReplicaLifecycleRecord => record.type === 'ready');
  const replicas = run.replicas.map(({ id, skewMs }) => {
    const offsets = lifecycle.filter((record) => record.replica === id).map((record) => record.wallMinusMonoMs);
    const measured = offsets.length ? median(offsets) - run.wallMinusMonoMs : null;
    if (measured === null) anomalies.push(`replica ${id} never logged ready`);
    else if (Math.abs(measured - skewMs) > 100) {
      anomalies.push(`replica ${id} was given a ${skewMs} ms clock skew but measured ${Math.round(measured)} ms`);
    }
    return {
      id,
      skewMs,
      measuredSkewMs: measured === null ? null : Math.round(measured),
      processes: lifecycle.filter((record) => record.replica === id).length,
    };
  });

  // (1) each tick once
  const byTick = new Map<number, Execution[]>();
  for (const execution of executions) {
    if (execution.tick === null) continue;
    byTick.set(execution.tick, [...(byTick.get(execution.tick) ?? []), execution]);
  }
  const duplicates = { violations: [] as Execution[][], excused: 0 };
  for (const group of byTick.values()) {
    if (group.length < 2) continue;
    if (group.some((execution) => inside(execution.start, redisWindows))) duplicates.excused++;
    else duplicates.violations.push(group);
  }

  // (2) no overlap
  const overlaps = { violations: [] as [Execution, Execution][], fenced: [] as [Execution, Execution][], excused: 0 };
  for (let i = 0; i < executions.length; i++) {
    const first = executions[i];
    for (let j = i + 1; j < executions.length && executions[j].start < first.end; j++) {
      const second = executions[j];
      if (inside(first.start, redisWindows) || inside(second.start, redisWindows)) overlaps.excused++;
      else if (
        first.outcome === 'lost-lock' &&
        first.token !== null &&
        second.token !== null &&
        first.token < second.token &&
        (first.lastOk === null || first.lastOk < second.start)
      ) {
        overlaps.fenced.push([first, second]);
      } else overlaps.violations.push([first, second]);
    }
  }

  // (3) tokens grow in start order
  const tokenOrder = { violations: [] as [Execution, Execution][] };
  const fenced = executions.filter((execution) => execution.token !== null);
  for (let k = 1; k < fenced.length; k++) {
    if (fenced[k].token! <= fenced[k - 1].token!) tokenOrder.violations.push([fenced[k - 1], fenced[k]]);
  }

  // (4) every tick, while healthy
  const measuredSkews = replicas.map((replica) => replica.measuredSkewMs ?? replica.skewMs);
  const fastest = Math.max(...measuredSkews);
  const dueAt = (tick: number) => tick - run.wallMinusMonoMs - fastest;
  const firstTick = Math.ceil((steady.start + 1_000 + run.wallMinusMonoMs + fastest) / 1_000) * 1_000;
  const missedTicks = { violations: [] as number[] };
  let checkedTicks = 0;
  for (let tick = firstTick; dueAt(tick) <= steady.end - 1_000; tick += 1_000) {
    if (inside(dueAt(tick), windows)) continue;
    checkedTicks++;
    if (!byTick.has(tick)) missedTicks.violations.push(tick);
  }

  // (5) executions frozen past their TTL learn that their lock is lost
  const stopCaught = { checked: 0, violations: [] as Execution[], maxNoticeDelayMs: null as number | null };
  for (const fault of faults) {
    if (fault.kind !== 'replica-stop' || fault.end - fault.start <= run.ttlMs) continue;
    for (const execution of executions) {
      if (execution.pid !== fault.pid || execution.start >= fault.start || execution.end <= fault.start) continue;
      stopCaught.checked++;
      if (execution.outcome !== 'lost-lock') stopCaught.violations.push(execution);
      else stopCaught.maxNoticeDelayMs = Math.max(stopCaught.maxNoticeDelayMs ?? 0, execution.end - fault.end);
    }
  }

  const stopWindows = windows.filter((window) => window.kind === 'replica-stop');
  const lostLock = executions.filter((execution) => execution.outcome === 'lost-lock');
  const withoutRedis = executions.filter((execution) => execution.withoutRedis);
  const count = (kind: FaultKind, midJob?: boolean) =>
    faults.filter((fault) => fault.kind === kind && (midJob === undefined || fault.midJob === midJob)).length;

  return {
    runDir,
    run,
    durationMs: steady.end - steady.start,
    replicas,
    faults: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, count(kind)])) as Record<FaultKind, number>,
    faultsMidJob: { 'replica-kill': count('replica-kill', true), 'replica-stop': count('replica-stop', true) },
    executions: {
      total: executions.length,
      completed: executions.filter((execution) => execution.outcome === 'completed').length,
      lostLock: lostLock.length,
      crashed: executions.filter((execution) => execution.outcome === 'crashed').length,
      errors: executions.filter((execution) => execution.outcome === 'error').length,
      withoutRedis: withoutRedis.length,
      lostLockUnexplained: lostLock.filter(
        (execution) => !inside(execution.end, redisWindows) && !inside(execution.end, stopWindows),
      ).length,
      withoutRedisWhileHealthy: withoutRedis.filter((execution) => !inside(execution.start, redisWindows)).length,
    },
    ticks: { executed: byTick.size, checked: checkedTicks },
    duplicates,
    overlaps,
    tokenOrder,
    missedTicks,
    stopCaught,
    anomalies,
    windows,
  };
}

/** Number of violations of checks 1 to 6. */
export function violationCount(report: ChaosReport): number {
  return (
    report.duplicates.violations.length +
    report.overlaps.violations.length +
    report.tokenOrder.violations.length +
    report.missedTicks.violations.length +
    report.stopCaught.violations.length +
    report.anomalies.length
  );
}

/** The report as markdown: the summary table, the exclusion rules, and the evidence of each violation. */
export function formatReport(report: ChaosReport): string {
  const { executions: e, faults, faultsMidJob: mid } = report;
  const rows: [string, string | number][] = [
    ['replicas (clock skew, ms)', report.replicas.map((r) => `${r.id} ${signed(r.skewMs)}`).join(', ')],
    [
      'measured skew (ms)',
      report.replicas.map((r) => `${r.id} ${r.measuredSkewMs === null ? '?' : signed(r.measuredSkewMs)}`).join(', '),
    ],
    ['replica processes started (with restarts)', report.replicas.reduce((sum, r) => sum + r.processes, 0)],
    ['lock TTL / settle (ms)', `${report.run.ttlMs} / ${report.run.settleMs}`],
    ['run length (s)', (report.durationMs / 1000).toFixed(1)],
    ['ticks executed (distinct)', report.ticks.executed],
    ['executions', e.total],
    [
      '&nbsp;&nbsp;completed / lost-lock / crashed / error',
      `${e.completed} / ${e.lostLock} / ${e.crashed} / ${e.errors}`,
    ],
    [
      '&nbsp;&nbsp;fail-open (no token), of which outside Redis windows',
      `${e.withoutRedis}, ${e.withoutRedisWhileHealthy}`,
    ],
    ['faults: SIGKILL replica (mid-job)', `${faults['replica-kill']} (${mid['replica-kill']})`],
    ['faults: SIGSTOP replica > TTL (mid-job)', `${faults['replica-stop']} (${mid['replica-stop']})`],
    ['faults: Redis restarted (kill + start)', faults['redis-restart']],
    ['faults: Redis paused (SIGSTOP/SIGCONT)', faults['redis-pause']],
    ['faults: clock skew (replicas skewed)', report.replicas.filter((r) => r.skewMs !== 0).length],
    ['(1) duplicate ticks while Redis healthy', report.duplicates.violations.length],
    ['&nbsp;&nbsp;duplicate ticks in Redis windows (excused)', report.duplicates.excused],
    ['(2) overlaps while Redis healthy', report.overlaps.violations.length],
    ['&nbsp;&nbsp;fenced overlaps (lost-lock holder, lower token)', report.overlaps.fenced.length],
    ['&nbsp;&nbsp;overlapping pairs in Redis windows (excused)', report.overlaps.excused],
    ['(3) fencing-token order violations', report.tokenOrder.violations.length],
    [
      '(4) missed ticks while healthy / ticks checked',
      `${report.missedTicks.violations.length} / ${report.ticks.checked}`,
    ],
    [
      '(5) SIGSTOPped executions not ending lost-lock / checked',
      `${report.stopCaught.violations.length} / ${report.stopCaught.checked}`,
    ],
    [
      '&nbsp;&nbsp;slowest notice of a lost lock after SIGCONT (ms)',
      report.stopCaught.maxNoticeDelayMs === null ? '-' : Math.round(report.stopCaught.maxNoticeDelayMs),
    ],
    ['lost-lock executions', e.lostLock],
    ['&nbsp;&nbsp;of which no fault explains', e.lostLockUnexplained],
    ['(6) anomalies', report.anomalies.length],
  ];
  const cells = rows.map(([metric, value]) => [metric, String(value)]);
  const widths = [0, 1].map((column) => Math.max(...[['metric', 'value'], ...cells].map((row) => row[column].length)));
  const row = (pair: string[]) => `| ${pair.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
  const lines = [
    row(['metric', 'value']),
    row(widths.map((width) => '-'.repeat(width))),
    ...cells.map(row),
    '',
    `Verdict: ${violationCount(report) === 0 ? 'no violation' : `${violationCount(report)} violation(s)`}.`,
    '',
    'Rules:',
    '',
    ...EXCLUSION_RULES.map((rule) => `- ${rule}`),
  ];
  const evidence = describeViolations(report);
  if (evidence.length) lines.push('', 'Violations:', '', ...evidence);
  return lines.join('\n');
}

function describeViolations(report: ChaosReport): string[] {
  const show = (execution: Execution) => `    ${JSON.stringify(execution)}`;
  const near = (time: number) =>
    report.windows
      .filter((window) => time >= window.fault.start - 5_000 && time <= window.end + 5_000)
      .map((window) => `    fault ${JSON.stringify(window.fault)}`);
  const out: string[] = [];
  for (const group of report.duplicates.violations) {
    out.push(
      `- (1) tick ${group[0].tick} executed ${group.length} times:`,
      ...group.map(show),
      ...near(group[0].start),
    );
  }
  for (const [first, second] of report.overlaps.violations) {
    out.push('- (2) overlap:', show(first), show(second), ...near(second.start));
  }
  for (const [first, second] of report.tokenOrder.violations) {
    out.push('- (3) token not increasing:', show(first), show(second), ...near(second.start));
  }
  for (const tick of report.missedTicks.violations) {
    out.push(`- (4) tick ${tick} (${new Date(tick).toISOString()}) was never executed`);
  }
  for (const execution of report.stopCaught.violations) {
    out.push('- (5) frozen past its TTL but did not end lost-lock:', show(execution), ...near(execution.start));
  }
  for (const anomaly of report.anomalies) out.push(`- (6) ${anomaly}`);
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

function signed(value: number): string {
  return value > 0 ? `+${value}` : String(value);
}
