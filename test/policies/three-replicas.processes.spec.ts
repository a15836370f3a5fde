import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { buildReplicaApp, CHAOS_DIR, POLICY_REPLICA_SCRIPT, REPO_ROOT } from '../chaos/chaos-build';
import { monoMs, readJsonLines } from '../chaos/execution-log';
import type { PolicyRecord, PolicyRunRecord } from '../chaos/policy-replica';
import { CronSchedule } from '../../src/core/jobs/cron-schedule';
import { killOnExit, startTestRedis, type TestRedis } from '../support/redis-server';

// Three replica processes of a real Nest app (test/chaos/policy-replica.ts, ScheduleModule and
// @DistributedLock jobs with policies) on one redis-server the test starts. One replica is
// SIGKILLed in the middle of a 4 s run; later the whole fleet is stopped across several
// occurrences and started again. Logs stay in .chaos/runs/<time>-policies/.
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const REPLICAS = ['a', 'b', 'c'];

type Start = PolicyRunRecord & { type: 'start' };

describe('job policies across three replica processes (real Nest apps, real Redis)', () => {
  let redis: TestRedis;
  let logFile: string;
  let runDir: string;
  const processes = new Map<string, ChildProcess>();
  let records: PolicyRecord[] = [];
  let killed: Start;
  let fleetDownAt = 0;
  let fleetBackAt = 0;
  let fleetDownWall = 0;

  const read = () => readJsonLines<PolicyRecord>(logFile);
  const starts = (job: Start['job']) => read().filter((r): r is Start => r.type === 'start' && r.job === job);

  function start(replica: string): void {
    const out = openSync(join(runDir, `${replica}.out`), 'a');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      POLICY_REDIS_URL: redis.url,
      POLICY_REPLICA: replica,
      POLICY_LOG_FILE: logFile,
    };
    for (const name of ['LD_PRELOAD', 'FAKETIME', 'NODE_OPTIONS', 'REDIS_URL']) delete env[name];
    const child = spawn(process.execPath, [POLICY_REPLICA_SCRIPT], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    killOnExit(child);
    processes.set(replica, child);
  }

  async function waitFor<T>(find: () => T | undefined, withinMs: number, what: string): Promise<T> {
    const deadline = monoMs() + withinMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (monoMs() > deadline) throw new Error(`${what}: not within ${withinMs} ms (logs in ${runDir})`);
      await sleep(50);
    }
  }

  const readyCount = () => read().filter((r) => r.type === 'ready').length;

  async function stopAll(): Promise<void> {
    await Promise.all(
      [...processes.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    processes.clear();
  }

  beforeAll(async () => {
    buildReplicaApp();
    redis = await startTestRedis();
    runDir = join(CHAOS_DIR, 'runs', `${new Date().toISOString().replace(/[:.]/g, '-')}-policies`);
    mkdirSync(runDir, { recursive: true });
    logFile = join(runDir, 'replicas.jsonl');

    for (const replica of REPLICAS) start(replica);
    await waitFor(() => (readyCount() === 3 ? true : undefined), 30_000, 'three replicas ready');

    // SIGKILL the replica running the next long job, 1 s into its 4 s run.
    killed = await waitFor(() => starts('longJob')[0], 15_000, 'a long run');
    await sleep(1_000);
    processes.get(killed.replica)!.kill('SIGKILL');
    await waitFor(
      () => starts('longJob').find((r) => r.tick === killed.tick && r.trigger === 'recovery'),
      20_000,
      'a recovery of the killed run',
    );
    start(killed.replica); // back, as a new instance
    await waitFor(() => (readyCount() === 4 ? true : undefined), 30_000, 'the killed replica back');

    // The whole fleet down across three or four every-2-second occurrences, then back.
    await stopAll();
    fleetDownAt = monoMs();
    fleetDownWall = Date.now();
    await sleep(7_000);
    fleetBackAt = monoMs();
    for (const replica of REPLICAS) start(replica);
    await waitFor(() => (readyCount() === 7 ? true : undefined), 30_000, 'the fleet back');
    await sleep(5_000);
    // The long job (every 10 s) may have run no other occurrence yet: the one due while the recovery
    // ran is skipped as an overlap, and the one missed while the fleet was down is caught up by the
    // first look at least 5 s after it. Its next occurrence runs by then, by one or the other.
    await waitFor(
      () => starts('longJob').find((r) => r.tick !== killed.tick),
      20_000,
      'a long run of another occurrence',
    );
    await stopAll();
    records = read();
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    await redis?.dispose();
  });

  it('runs a killed run again once, on another replica, as attempt 2: the run that stayed alive is not taken over', () => {
    const long = records.filter((r): r is Start => r.type === 'start' && r.job === 'longJob');
    const ofKilled = long.filter((r) => r.tick === killed.tick);
    expect(ofKilled.map((r) => [r.trigger, r.attempt])).toEqual([
      ['schedule', 1],
      ['recovery', 2],
    ]);
    expect(ofKilled[1].replica).not.toBe(killed.replica);
    // Every other long run (4 s on a 1 s TTL, extended while alive) ran once, by the schedule or a catch-up.
    const others = long.filter((r) => r.tick !== killed.tick);
    expect(others.length).toBeGreaterThanOrEqual(1);
    expect(others.every((r) => r.trigger !== 'recovery')).toBe(true);
    expect(new Set(others.map((r) => r.tick)).size).toBe(others.length);
  });

  it("catches up at most the latest occurrence the stopped fleet missed, none before it, once ('latest')", () => {
    const runs = records.filter((r): r is Start => r.type === 'start' && r.job === 'latestJob');
    const ticks = runs.map((r) => r.tick);
    expect(new Set(ticks).size).toBe(ticks.length); // never twice
    const afterBack = runs.filter((r) => r.at > fleetBackAt);
    const caughtUp = afterBack.filter((r) => r.trigger === 'catch-up').map((r) => r.tick);
    // 'latest' runs the most recent missed occurrence unless a later one has run: a replica whose
    // timer served the next occurrence before any replica looked finds the job up to date.
    expect(caughtUp.length).toBeLessThanOrEqual(2);
    if (caughtUp.length === 0) {
      expect(afterBack.some((r) => r.trigger === 'schedule' && r.tick > fleetDownWall)).toBe(true);
      return;
    }
    expect(caughtUp[0]).toBeGreaterThan(fleetDownWall);
    const skipped = new CronSchedule('*/2 * * * * *')
      .occurrencesBetween(fleetDownWall + 1, caughtUp[0] - 1, 100)
      .filter((tick) => !ticks.includes(tick));
    expect(skipped.length).toBeGreaterThanOrEqual(1);
  });

  it("catches up the newest two occurrences the stopped fleet missed, once each ('all', max 2), and no other", () => {
    const runs = records.filter((r): r is Start => r.type === 'start' && r.job === 'catchUpJob');
    const ticks = runs.map((r) => r.tick);
    expect(new Set(ticks).size).toBe(ticks.length); // never twice
    const missedWhileDown = new CronSchedule('*/2 * * * * *')
      .occurrencesBetween(fleetDownWall + 1, fleetDownWall + (fleetBackAt - fleetDownAt), 100)
      .filter((tick) => !ticks.includes(tick));
    const caughtUp = runs.filter((r) => r.trigger === 'catch-up' && r.at > fleetBackAt).map((r) => r.tick);
    expect(caughtUp.length).toBeGreaterThanOrEqual(2);
    expect(missedWhileDown.length).toBeGreaterThanOrEqual(1); // left out by max: 2
    expect(Math.max(...missedWhileDown)).toBeLessThan(Math.min(...caughtUp));
  });
});
