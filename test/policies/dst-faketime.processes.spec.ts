import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReplicaApp, CHAOS_DIR, DST_REPLICA_SCRIPT, REPO_ROOT } from '../chaos/chaos-build';
import type { DstRecord } from '../chaos/dst-replica';
import { readJsonLines } from '../chaos/execution-log';
import { faketimeOffset, findLibfaketime } from '../chaos/faketime';
import { killOnExit, startTestRedis, type TestRedis } from '../support/redis-server';

// The night the clocks go forward in Europe/Paris (29 March 2026, 02:00 → 03:00), lived by a
// real Nest app process under libfaketime, its wall clock starting at 00:59:50Z (01:59:50 in
// Paris), with a real ScheduleModule and a real redis-server. Two jobs at 02:30, a time that does
// not exist that night. Redis runs on real time: libfaketime 0.9.10 cannot start redis-server
// 7.0 (jemalloc's clock_gettime recurses into libfaketime's initialization), so the app keeps
// state long enough (stateRetentionMs) for Redis to judge an occurrence months from its clock.
const libfaketime = findLibfaketime();
const describeWithFaketime = libfaketime ? describe : describe.skip;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const START = Date.parse('2026-03-29T00:59:50Z');
const END_OF_GAP = Date.parse('2026-03-29T01:00:00Z'); // 03:00 (+02:00)

describeWithFaketime('dst.springForward on the night the clocks go forward (libfaketime, real Redis)', () => {
  let redis: TestRedis;
  let child: ChildProcess;
  let records: DstRecord[];
  let output: string;

  beforeAll(async () => {
    buildReplicaApp();
    const runDir = join(CHAOS_DIR, 'runs', `${new Date().toISOString().replace(/[:.]/g, '-')}-dst`);
    mkdirSync(runDir, { recursive: true });
    const logFile = join(runDir, 'dst-replica.jsonl');
    const outFile = join(runDir, 'dst-replica.out');
    redis = await startTestRedis();
    // The app's wall clock starts at START and runs on; its timers keep the monotonic clock.
    const faked = {
      LD_PRELOAD: libfaketime!,
      FAKETIME: faketimeOffset(START - Date.now()),
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
    const env: NodeJS.ProcessEnv = { ...process.env, ...faked, DST_REDIS_URL: redis.url, DST_LOG_FILE: logFile };
    for (const name of ['NODE_OPTIONS', 'REDIS_URL']) delete env[name];
    const out = openSync(outFile, 'a');
    child = spawn(process.execPath, [DST_REPLICA_SCRIPT], { cwd: REPO_ROOT, env, stdio: ['ignore', out, out] });
    closeSync(out);
    killOnExit(child);

    const deadline = Date.now() + 40_000;
    while (Date.now() < deadline && !readJsonLines<DstRecord>(logFile).some((r) => r.type === 'run')) await sleep(100);
    await sleep(2_000); // the other job's firing, had it run
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    records = readJsonLines<DstRecord>(logFile);
    output = readFileSync(outFile, 'utf8');
  }, 80_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await redis?.dispose();
  });

  it('the app reads the night of the change', () => {
    const ready = records.find((r) => r.type === 'ready')!;
    expect(Math.abs(ready.wallClock - START)).toBeLessThan(30_000);
  });

  it("'run-at-end-of-gap' runs the skipped 02:30 once, at 03:00", () => {
    const runs = records.filter(
      (r): r is Extract<DstRecord, { type: 'run' }> => r.type === 'run' && r.job === 'endOfGap',
    );
    expect(runs.map((r) => r.tick)).toEqual([END_OF_GAP]);
    expect(runs[0].wallClock).toBeGreaterThanOrEqual(END_OF_GAP - 50);
  });

  it("'skip' does not run it, and says why", () => {
    expect(records.filter((r) => r.type === 'run' && r.job === 'skip')).toEqual([]);
    expect(output).toContain(
      "Skipped NightlyJobs.skip: its wall time fell in the daylight-saving gap (dst.springForward: 'skip')",
    );
  });
});
