/**
 * Checks the logs of a chaos run (see fault-driver.ts) against the library's guarantees.
 *
 * Jobs: the every-second and the every-5-seconds job (CHAOS_JOBS), each under its own lock. Each
 * rule below holds per job; executions of different jobs may overlap.
 *
 * Executions: one per `start` record. Its interval is [start, end], where `end` is the time in its
 * `end` record or, for an execution cut off before it could write one ("crashed"), the time the
 * driver sent SIGKILL to its process, or the time its SIGTERMed process exited. Its occurrence is
 * the tick the library reported (`currentLock().tick`) rounded down to its job's period. Times
 * are CLOCK_MONOTONIC, common to all processes.
 *
 * Windows: every fault has an exclusion window [fault start, fault end + TTL + settle], where the
 * fault ends when the replica is resumed, or restarted and ready again, or its event loop is free
 * again, or Redis is resumed or started again, and settle is 2 s by default. After a SIGKILL the
 * dead holder's lock stays until its TTL; after a Redis restart the state (last tick, fencing
 * counter) is gone; while Redis is frozen or down, fail-open replicas run without a lock.
 *
 * Checks:
 * 1. No occurrence executed twice: no two executions of one occurrence with the same attempt
 *    (`currentLock().attempt`), and at most one completed. A retry or a recovery is a new attempt
 *    of an occurrence whose earlier attempt failed or was cut off: counted as a re-run, not a
 *    duplicate. A duplicate is excused only when one of its executions started inside a Redis
 *    window (restart or pause); replica faults (SIGKILL, SIGSTOP, SIGTERM, a late timer, the whole
 *    fleet SIGKILLed) excuse nothing. And every reported tick is an
 *    occurrence of its job's schedule (a multiple of its period), with no exclusion: a late
 *    firing named after the next second is a misnamed occurrence, whether or not it ran twice.
 * 2. No two executions overlap. A pair is excused when either started inside a Redis window.
 *    Otherwise the overlap is "fenced", and allowed, only when the execution that started first
 *    ended with lost-lock, its fencing token is lower than the other's, and its last passing
 *    `throwIfLost()` was before the other started, and it was not in flight on a SIGTERMed
 *    replica (a drain keeps its lock). Any other overlap is a violation.
 * 3. Fencing tokens strictly increase in the order executions started (no exclusion; executions
 *    without a token, run fail-open, are left out).
 * 4. Every occurrence of the every-second job (no policy) is executed. An occurrence T (wall-clock ms) is due on the monotonic clock
 *    when the replica with the fastest clock fires it: T - (driver's wall - monotonic offset) -
 *    that skew. Occurrences due from 1 s after all replicas were ready to 1 s before the fault
 *    phase ended, outside every window (which also keeps at least one replica alive), must have
 *    an execution. A late-timer window excuses only the every-second job (the blocked replica may
 *    be holding its lock); the every-5-seconds occurrence it straddles must run.
 * 4b. Never zero, for the every-5-seconds job (catchUp, retry and recoverCrashed): every
 *    occurrence due from 1 s after all replicas were ready to 1 s before the fault phase ended,
 *    fault windows included, has a completed execution (by any trigger), or a stated reason: due
 *    inside a Redis restart window (Redis lost its data: counted apart), attempts exhausted (three
 *    attempts ran and failed, whatever failed them, or all three fail on purpose), or its last
 *    failure coming so late that the next
 *    occurrence was due before a retry could start (the retry window closed).
 * 5. An execution under way when its process was SIGSTOPped for longer than the TTL ends with
 *    lost-lock: it learns at its next `throwIfLost()` that its lock is gone.
 * 6. No anomalies: no execution ending in another error, no replica exiting unless the driver
 *    killed or terminated it, no execution without end on a process that was neither, and each
 *    replica's measured clock skew within 100 ms of the one it was given.
 * 7. A SIGTERMed replica drains: every execution in flight when it received SIGTERM ends
 *    completed (its end record written, not cut off, not lost-lock), no execution of that process
 *    acquires its lock after it received SIGTERM, and the process exits by itself (code 0, or the
 *    SIGTERM Nest raises again after its hooks) before the driver gives up and SIGKILLs it.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHAOS_JOBS,
  type DriverRecord,
  type ExecutionEndRecord,
  type ExecutionStartRecord,
  EVERY_FIVE_SECONDS_POLICIES,
  FAULT_KINDS,
  type FaultKind,
  plannedFailure,
  readJsonLines,
  type ReplicaLifecycleRecord,
  type ReplicaRecord,
  type ReplicaShutdownRecord,
} from './execution-log';

/** The rules above, as printed with every report. */
export const EXCLUSION_RULES = [
  'Exclusion window of a fault: [fault start, fault end + TTL + settle]; a replica fault ends when the replica is resumed, restarted and ready, or its event loop is free again; a Redis fault when Redis is resumed or started again.',
  'Every rule holds per job (lock key): the every-second job and the every-5-seconds job; an occurrence is the tick the library reported rounded down to the job period.',
  '(1) duplicate occurrences are excused only when an execution involved started inside a Redis (restart or pause) window; replica faults (SIGKILL, SIGSTOP, SIGTERM, late timer) excuse nothing. A reported tick that is not on its job schedule is a violation, with no exclusion.',
  '(2) outside Redis windows an overlap is allowed only if the earlier execution ended lost-lock, has the lower fencing token, its last passing throwIfLost() precedes the later start, and it was not in flight on a SIGTERMed replica.',
  '(3) fencing tokens must strictly increase in start order, with no exclusion.',
  '(4) an every-second occurrence is expected when the fastest-clock replica fires it 1 s or more after all replicas were ready, 1 s or more before the fault phase ended, and outside every fault window.',
  '(4b) never zero: every every-5-seconds occurrence due in that span, fault windows included, has a completed execution by any trigger (schedule, catch-up, retry, recovery), or a stated reason: due inside a Redis restart window, attempts exhausted (three attempts ran and failed, whatever failed them, or all three fail on purpose), or the retry window closed (the next occurrence due before a retry could start).',
  '(5) every execution under way when its replica was SIGSTOPped longer than the TTL must end lost-lock.',
  '(7) after SIGTERM a replica drains: each execution in flight when it received SIGTERM ends completed (not cut off, not lost-lock), none of its executions acquires after that, and it exits by itself (code 0 or SIGTERM) before the driver SIGKILLs it (run length + 7.5 s).',
  'A crashed execution (no end record) ends when the driver sent SIGKILL to its process, or when its SIGTERMed process exited.',
];

export type FaultRecord = Extract<DriverRecord, { type: 'fault' }>;
type RunRecord = Extract<DriverRecord, { type: 'run' }>;
type ExitRecord = Extract<DriverRecord, { type: 'exit' }>;

const EVERY_SECOND = CHAOS_JOBS.everySecond.key;
const EVERY_FIVE_SECONDS = CHAOS_JOBS.everyFiveSeconds.key;
const EVERY_FIVE_MS = CHAOS_JOBS.everyFiveSeconds.periodMs;
const PERIODS = new Map<string, number>(Object.values(CHAOS_JOBS).map(({ key, periodMs }) => [key, periodMs]));

export interface Execution extends Omit<ExecutionStartRecord, 'type' | 'trigger' | 'attempt'> {
  trigger: string;
  attempt: number;
  /** The scheduled occurrence it served: its tick rounded down to its job's period. */
  occurrence: number | null;
  outcome: ExecutionEndRecord['outcome'] | 'crashed';
  /** End record time, or when its process was killed or exited, for a crashed execution. */
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

/** What went wrong around one SIGTERM: the rule (7) evidence. */
export interface DrainViolation {
  reason: string;
  fault: FaultRecord;
  execution?: Execution;
}

export interface ChaosReport {
  runDir: string;
  run: RunRecord;
  durationMs: number;
  replicas: { id: string; skewMs: number; measuredSkewMs: number | null; processes: number }[];
  faults: Record<FaultKind, number>;
  /** Replica faults that hit a replica with an execution under way. */
  faultsMidJob: Record<'replica-kill' | 'replica-stop' | 'replica-term', number>;
  executions: {
    total: number;
    completed: number;
    lostLock: number;
    crashed: number;
    errors: number;
    /** Executions that failed on purpose (`plannedFailure`). */
    thrown: number;
    withoutRedis: number;
    /** Lost-lock executions that no fault explains (e.g. a stall of the replica longer than the TTL). */
    lostLockUnexplained: number;
    /** Fail-open executions that started outside every Redis window. */
    withoutRedisWhileHealthy: number;
  };
  ticks: { executed: number; checked: number; byJob: { job: string; executed: number; checked: number }[] };
  duplicates: { violations: Execution[][]; excused: number; reruns: number; offSchedule: Execution[] };
  overlaps: { violations: [Execution, Execution][]; fenced: [Execution, Execution][]; excused: number };
  tokenOrder: { violations: [Execution, Execution][] };
  /** Occurrences never executed, with their job. */
  missedTicks: { violations: { job: string; tick: number }[] };
  /** Rule (4b), for the every-5-seconds job: how each occurrence checked got (or did not get) its run. */
  neverZero: {
    checked: number;
    completed: number;
    /** Completed by a run that was not the scheduled first attempt. */
    byTrigger: Record<string, number>;
    redisRestart: number;
    attemptsExhausted: number;
    retryWindowClosed: number;
    violations: { tick: number; executions: Execution[] }[];
  };
  stopCaught: { checked: number; violations: Execution[]; maxNoticeDelayMs: number | null };
  /** Rule (7): SIGTERMs sent, executions in flight at them, and how long the slowest took to exit. */
  drain: { terms: number; inFlight: number; violations: DrainViolation[]; maxExitMs: number | null };
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
  // Logs written before replica-term existed have no terminatedAt.
  const exits = driver
    .filter((record): record is ExitRecord => record.type === 'exit')
    .map((exit) => ({ ...exit, terminatedAt: exit.terminatedAt ?? null }));
  const anomalies: string[] = [];

  const windows: Window[] = faults.map((fault) => ({
    kind: fault.kind,
    start: fault.start,
    end: fault.end + run.ttlMs + run.settleMs,
    fault,
  }));
  const redisWindows = windows.filter((window) => window.kind.startsWith('redis'));
  const inside = (time: number, among: Window[]) => among.some((window) => time >= window.start && time <= window.end);

  // Executions, with end times for those cut off before they wrote an end.
  const ends = new Map<string, ExecutionEndRecord>();
  for (const record of replicaRecords) if (record.type === 'end') ends.set(record.exec, record);
  const cutOffAt = new Map<number, number>();
  for (const exit of exits) {
    if (exit.killedAt !== null) cutOffAt.set(exit.pid, exit.killedAt);
    else if (exit.terminatedAt !== null) cutOffAt.set(exit.pid, exit.at);
    else {
      anomalies.push(
        `replica ${exit.replica} (pid ${exit.pid}) exited by itself (code ${exit.code}, signal ${exit.signal})`,
      );
    }
  }
  const executions: Execution[] = replicaRecords
    .filter((record): record is ExecutionStartRecord => record.type === 'start')
    .map(({ type: _type, ...start }) => {
      // Logs written before the every-5-seconds job existed have no job: the every-second one.
      const job = start.job ?? EVERY_SECOND;
      const periodMs = PERIODS.get(job);
      if (periodMs === undefined) anomalies.push(`execution ${start.exec} is of an unknown job ${job}`);
      const occurrence =
        start.tick === null ? null : Math.floor(start.tick / (periodMs ?? 1_000)) * (periodMs ?? 1_000);
      const execution = {
        ...start,
        job,
        occurrence,
        trigger: start.trigger ?? 'schedule',
        attempt: start.attempt ?? 1,
      };
      const end = ends.get(start.exec);
      if (end) return { ...execution, outcome: end.outcome, end: end.end, lastOk: end.lastOk, error: end.error };
      const crashedAt = cutOffAt.get(start.pid); // a SIGTERMed process's executions: (7) judges them
      if (crashedAt === undefined) {
        anomalies.push(`execution ${start.exec} has no end, but the driver never killed pid ${start.pid}`);
      }
      return { ...execution, outcome: 'crashed' as const, end: crashedAt ?? stop.at, lastOk: null };
    })
    .sort((x, y) => x.start - y.start);
  for (const execution of executions.filter((candidate) => candidate.outcome === 'error')) {
    anomalies.push(`execution ${execution.exec} failed with: ${execution.error}`);
  }
  const jobs = [...new Set([...PERIODS.keys(), ...executions.map((execution) => execution.job)])];
  const ofJob = (job: string) => executions.filter((execution) => execution.job === job);

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

  // (7) SIGTERMed replicas drain; run first, as (2) must know which executions were draining.
  const drain = checkDrains(faults, exits, executions, replicaRecords);

  // (1) each occurrence of each job once, and every tick on its job's schedule
  const byOccurrence = new Map<string, Execution[]>();
  for (const execution of executions) {
    if (execution.occurrence === null) continue;
    const key = `${execution.job} ${execution.occurrence}`;
    byOccurrence.set(key, [...(byOccurrence.get(key) ?? []), execution]);
  }
  const duplicates = {
    violations: [] as Execution[][],
    excused: 0,
    reruns: 0,
    offSchedule: executions.filter((execution) => execution.tick !== execution.occurrence),
  };
  for (const group of byOccurrence.values()) {
    if (group.length < 2) continue;
    const attempts = group.map((execution) => execution.attempt);
    const sameAttempt = new Set(attempts).size < attempts.length;
    const completed = group.filter((execution) => execution.outcome === 'completed').length;
    if (!sameAttempt && completed <= 1) duplicates.reruns++;
    else if (group.some((execution) => inside(execution.start, redisWindows))) duplicates.excused++;
    else duplicates.violations.push(group);
  }

  // (2) no overlap within a job
  const overlaps = { violations: [] as [Execution, Execution][], fenced: [] as [Execution, Execution][], excused: 0 };
  for (const job of jobs) {
    const sorted = ofJob(job);
    for (let i = 0; i < sorted.length; i++) {
      const first = sorted[i];
      for (let j = i + 1; j < sorted.length && sorted[j].start < first.end; j++) {
        const second = sorted[j];
        if (inside(first.start, redisWindows) || inside(second.start, redisWindows)) overlaps.excused++;
        else if (
          first.outcome === 'lost-lock' &&
          !drain.draining.has(first) &&
          first.token !== null &&
          second.token !== null &&
          first.token < second.token &&
          (first.lastOk === null || first.lastOk < second.start)
        ) {
          overlaps.fenced.push([first, second]);
        } else overlaps.violations.push([first, second]);
      }
    }
  }

  // (3) tokens grow in start order, per lock key
  const tokenOrder = { violations: [] as [Execution, Execution][] };
  for (const job of jobs) {
    const fenced = ofJob(job).filter((execution) => execution.token !== null);
    for (let k = 1; k < fenced.length; k++) {
      if (fenced[k].token! <= fenced[k - 1].token!) tokenOrder.violations.push([fenced[k - 1], fenced[k]]);
    }
  }

  // (4) every occurrence, while healthy
  const measuredSkews = replicas.map((replica) => replica.measuredSkewMs ?? replica.skewMs);
  const fastest = Math.max(...measuredSkews);
  const dueAt = (tick: number) => tick - run.wallMinusMonoMs - fastest;
  const missedTicks = { violations: [] as { job: string; tick: number }[] };
  const byJob: ChaosReport['ticks']['byJob'] = [];
  const neverZero = checkNeverZero(run, byOccurrence, windows, {
    first: Math.ceil((steady.start + 1_000 + run.wallMinusMonoMs + fastest) / EVERY_FIVE_MS) * EVERY_FIVE_MS,
    dueAt,
    until: steady.end - 1_000,
  });
  for (const job of jobs) {
    const periodMs = PERIODS.get(job) ?? 1_000;
    const first = Math.ceil((steady.start + 1_000 + run.wallMinusMonoMs + fastest) / periodMs) * periodMs;
    let checked = 0;
    for (let tick = first; dueAt(tick) <= steady.end - 1_000; tick += periodMs) {
      if (job === EVERY_FIVE_SECONDS) {
        checked++; // rule (4b), with its own exclusions
        continue;
      }
      if (inside(dueAt(tick), windows)) continue;
      checked++;
      if (!byOccurrence.has(`${job} ${tick}`)) missedTicks.violations.push({ job, tick });
    }
    const executed = new Set(
      ofJob(job)
        .map((execution) => execution.occurrence)
        .filter((tick) => tick !== null),
    );
    byJob.push({ job, executed: executed.size, checked });
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
    faultsMidJob: {
      'replica-kill': count('replica-kill', true),
      'replica-stop': count('replica-stop', true),
      'replica-term': count('replica-term', true),
    },
    executions: {
      total: executions.length,
      completed: executions.filter((execution) => execution.outcome === 'completed').length,
      lostLock: lostLock.length,
      crashed: executions.filter((execution) => execution.outcome === 'crashed').length,
      errors: executions.filter((execution) => execution.outcome === 'error').length,
      thrown: executions.filter((execution) => execution.outcome === 'thrown').length,
      withoutRedis: withoutRedis.length,
      lostLockUnexplained: lostLock.filter(
        (execution) => !inside(execution.end, redisWindows) && !inside(execution.end, stopWindows),
      ).length,
      withoutRedisWhileHealthy: withoutRedis.filter((execution) => !inside(execution.start, redisWindows)).length,
    },
    ticks: {
      executed: byJob.reduce((sum, job) => sum + job.executed, 0),
      checked: byJob.reduce((sum, job) => sum + job.checked, 0),
      byJob,
    },
    duplicates,
    overlaps,
    tokenOrder,
    missedTicks,
    neverZero,
    stopCaught,
    drain: {
      terms: drain.terms,
      inFlight: drain.draining.size,
      violations: drain.violations,
      maxExitMs: drain.maxExitMs,
    },
    anomalies,
    windows,
  };
}

/**
 * Rule (7) for each replica-term fault. SIGTERM counts from when the replica logged receiving it
 * (its `term` record), or from when the driver sent it if the replica never logged it.
 */
function checkDrains(
  faults: FaultRecord[],
  exits: ExitRecord[],
  executions: Execution[],
  replicaRecords: ReplicaRecord[],
): { terms: number; draining: Set<Execution>; violations: DrainViolation[]; maxExitMs: number | null } {
  const draining = new Set<Execution>();
  const violations: DrainViolation[] = [];
  let maxExitMs: number | null = null;
  const terms = faults.filter((fault) => fault.kind === 'replica-term');
  for (const fault of terms) {
    const received = replicaRecords.find(
      (record): record is ReplicaShutdownRecord => record.type === 'term' && record.pid === fault.pid,
    );
    const termAt = received?.at ?? fault.start;
    if (!received) violations.push({ reason: `pid ${fault.pid} never logged receiving SIGTERM`, fault });
    const exit = exits.find((candidate) => candidate.pid === fault.pid);
    if (!exit) violations.push({ reason: `pid ${fault.pid} has no exit record`, fault });
    else if (exit.killedAt !== null) {
      const waited = Math.round(exit.killedAt - fault.start);
      violations.push({
        reason: `pid ${fault.pid} had not exited ${waited} ms after SIGTERM and was SIGKILLed`,
        fault,
      });
    } else if (exit.code !== 0 && exit.signal !== 'SIGTERM') {
      violations.push({ reason: `pid ${fault.pid} exited with code ${exit.code}, signal ${exit.signal}`, fault });
    } else maxExitMs = Math.max(maxExitMs ?? 0, exit.at - fault.start);

    for (const execution of executions) {
      if (execution.pid !== fault.pid) continue;
      if (execution.acquired >= termAt) {
        violations.push({ reason: 'acquired its lock after its replica received SIGTERM', fault, execution });
      } else if (execution.end > termAt) {
        draining.add(execution);
        if (execution.outcome === 'crashed') {
          violations.push({
            reason: 'in flight at SIGTERM, cut off: no end record before its process exited',
            fault,
            execution,
          });
        } else if (execution.outcome !== 'completed') {
          violations.push({ reason: `in flight at SIGTERM, ended ${execution.outcome}`, fault, execution });
        }
      }
    }
  }
  return { terms: terms.length, draining, violations, maxExitMs };
}

/**
 * Rule (4b): each every-5-seconds occurrence from `first` while due by `until` has a completed
 * execution, or one of the stated reasons. Every window counts, Redis restarts apart.
 */
function checkNeverZero(
  run: RunRecord,
  byOccurrence: Map<string, Execution[]>,
  windows: Window[],
  span: { first: number; dueAt: (tick: number) => number; until: number },
): ChaosReport['neverZero'] {
  const report: ChaosReport['neverZero'] = {
    checked: 0,
    completed: 0,
    byTrigger: {},
    redisRestart: 0,
    attemptsExhausted: 0,
    retryWindowClosed: 0,
    violations: [],
  };
  const restarts = windows.filter((window) => window.kind === 'redis-restart');
  const { attempts, backoffMs } = EVERY_FIVE_SECONDS_POLICIES.retry;
  const share = run.failureShare ?? 0;
  for (let tick = span.first; span.dueAt(tick) <= span.until; tick += EVERY_FIVE_MS) {
    report.checked++;
    const executions = byOccurrence.get(`${EVERY_FIVE_SECONDS} ${tick}`) ?? [];
    const completed = executions.find((execution) => execution.outcome === 'completed');
    if (completed) {
      report.completed++;
      report.byTrigger[completed.trigger] = (report.byTrigger[completed.trigger] ?? 0) + 1;
      continue;
    }
    const due = span.dueAt(tick);
    if (restarts.some((window) => due >= window.start && due <= window.end)) {
      report.redisRestart++;
      continue;
    }
    // Attempts exhausted: `attempts` of them ran and failed (on purpose, lost their lock, cut off),
    // or all of them fail on purpose (some may then never have started).
    const failedAttempts = new Set(executions.map((execution) => execution.attempt));
    const planned = Array.from({ length: attempts }, (_, i) => plannedFailure(run.seed, share, tick, i + 1));
    if (failedAttempts.size >= attempts || planned.every(Boolean)) {
      report.attemptsExhausted++;
      continue;
    }
    // The least pause before a retry is half its backoff (equal jitter).
    const lastFailure = Math.max(...executions.map((execution) => execution.end));
    if (executions.length > 0 && lastFailure + backoffMs / 2 >= span.dueAt(tick + EVERY_FIVE_MS)) {
      report.retryWindowClosed++;
      continue;
    }
    report.violations.push({ tick, executions });
  }
  return report;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}
