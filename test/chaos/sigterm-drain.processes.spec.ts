import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { LockEngine } from '../../src';
import { killOnExit, startTestRedis, type TestRedis } from '../support/redis-server';
import { DRAIN_LOCK_KEY, DRAIN_RUN_MS, DRAIN_TTL_MS, type DrainRecord } from './drain-replica';
import { monoMs, readJsonLines } from './execution-log';
import { buildReplicaApp, CHAOS_DIR, DRAIN_REPLICA_SCRIPT, REPO_ROOT } from './chaos-build';

// A rolling restart of one replica: a real Nest app process (drain-replica.ts) with
// enableShutdownHooks() gets SIGTERM while its @Interval job, guarded by
// @DistributedLock('drain:job', 2000), is 0.8 s into a 3 s run. Meanwhile another replica (an
// in-process LockEngine) tries to take 'drain:job' every 50 ms. Logs stay in .chaos/runs/<time>-drain/.
/** How long the replica may take to exit after SIGTERM: the rest of its run plus a generous margin. */
const EXIT_BOUND_MS = 10_000;
const CONTEND_EVERY_MS = 50;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Exit {
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** `promise`'s value, or undefined when it takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls the log until `match` finds a record, or throws after `withinMs`. */
async function waitForRecord(logFile: string, match: (record: DrainRecord) => boolean, withinMs: number) {
  const deadline = monoMs() + withinMs;
  for (;;) {
    const found = readJsonLines<DrainRecord>(logFile).find(match);
    if (found) return found;
    if (monoMs() > deadline) throw new Error(`no matching record in ${logFile} within ${withinMs} ms`);
    await sleep(20);
  }
}

/**
 * The other replica: tries to take the lock every CONTEND_EVERY_MS until it gets it or
 * `untilMs` (monotonic) passes. Resolves when it got it (after `acquireLock` resolved), if it did.
 */
async function contend(engine: LockEngine, untilMs: number): Promise<number | undefined> {
  while (monoMs() < untilMs) {
    if (await engine.acquireLock(DRAIN_LOCK_KEY, DRAIN_TTL_MS)) return monoMs();
    await sleep(CONTEND_EVERY_MS);
  }
  return undefined;
}

describe('SIGTERM to a replica in the middle of a guarded @Interval run that outlasts its TTL', () => {
  let redis: TestRedis;
  let other: LockEngine;
  let records: DrainRecord[];
  let firstRun: Extract<DrainRecord, { type: 'start' }>;
  let termSentAt: number;
  let exit: Exit | undefined;
  let otherAcquiredAt: number | undefined;

  beforeAll(async () => {
    buildReplicaApp();
    redis = await startTestRedis();
    other = new LockEngine({ url: redis.url, logger: false });
    const runDir = join(CHAOS_DIR, 'runs', `${new Date().toISOString().replace(/[:.]/g, '-')}-drain`);
    mkdirSync(runDir, { recursive: true });
    const logFile = join(runDir, 'drain-replica.jsonl');
    const out = openSync(join(runDir, 'drain-replica.out'), 'a');
    const env: NodeJS.ProcessEnv = { ...process.env, DRAIN_REDIS_URL: redis.url, DRAIN_LOG_FILE: logFile };
    for (const name of ['LD_PRELOAD', 'FAKETIME', 'NODE_OPTIONS', 'REDIS_URL']) delete env[name];
    const child = spawn(process.execPath, [DRAIN_REPLICA_SCRIPT], { cwd: REPO_ROOT, env, stdio: ['ignore', out, out] });
    closeSync(out);
    killOnExit(child);
    const exited = new Promise<Exit>((resolve) =>
      child.once('exit', (code, signal) => resolve({ at: monoMs(), code, signal })),
    );
    try {
      firstRun = (await waitForRecord(logFile, (record) => record.type === 'start', 30_000)) as typeof firstRun;
      const contention = contend(other, monoMs() + 15_000);
      await sleep(800); // past the first extension (every TTL / 3), well before the run's end
      termSentAt = monoMs();
      child.kill('SIGTERM');
      exit = await within(exited, EXIT_BOUND_MS);
      otherAcquiredAt = await contention;
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    records = readJsonLines<DrainRecord>(logFile);
    console.log(
      `${runDir}\nSIGTERM sent at ${termSentAt}; exit ${JSON.stringify(exit ?? 'none within the bound')}; ` +
        `other replica acquired at ${otherAcquiredAt ?? 'never'}\n${records.map((r) => JSON.stringify(r)).join('\n')}`,
    );
  }, 90_000);

  afterAll(async () => {
    await other?.close();
    await redis?.dispose();
  });

  const endOf = (run: number) =>
    records.find(
      (record): record is Extract<DrainRecord, { type: 'end' }> => record.type === 'end' && record.run === run,
    );

  it('(1) lets the run in flight complete, its lock kept the whole time', () => {
    // Without this end record, the shutdown cut the run off.
    expect(records).toContainEqual(expect.objectContaining({ type: 'end', run: firstRun.run, lockLost: false }));
    expect(endOf(firstRun.run)!.at - firstRun.at).toBeGreaterThanOrEqual(DRAIN_RUN_MS - 50);
  });

  it('(2) lets the other replica take the lock only after that run ended', () => {
    const ended = endOf(firstRun.run);
    // A run cut off has no end: the lock was given up while the run still had work to do.
    expect({
      otherAcquired: otherAcquiredAt !== undefined,
      afterTheRunEnded: ended !== undefined && otherAcquiredAt !== undefined && otherAcquiredAt > ended.at,
    }).toEqual({ otherAcquired: true, afterTheRunEnded: true });
  });

  it('(3) exits by itself, through Nest shutdown hooks, within 10 s of SIGTERM', () => {
    expect(exit).toBeDefined();
    expect(exit!.at - termSentAt).toBeLessThan(EXIT_BOUND_MS);
    // Nest raises SIGTERM again once its hooks are done (or exits with 0 under useProcessExit).
    expect([
      { code: null, signal: 'SIGTERM' },
      { code: 0, signal: null },
    ]).toContainEqual({ code: exit!.code, signal: exit!.signal });
  });

  it('(4) starts no new run after SIGTERM', () => {
    expect(records.filter((record) => record.type === 'start' && record.at > termSentAt)).toEqual([]);
  });
});
