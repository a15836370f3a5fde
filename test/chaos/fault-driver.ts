import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { killOnExit, startTestRedis, type TestRedis } from '../support/redis-server';
import {
  type DriverRecord,
  FAULT_KINDS,
  type FaultKind,
  JsonLinesTail,
  JsonLinesWriter,
  monoMs,
  type ReplicaRecord,
} from './execution-log';
import { faketimeOffset, findLibfaketime } from './faketime';

/** The repository root: the nearest folder above this file with a package.json (also from .chaos/build). */
export const REPO_ROOT = (() => {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`No package.json above ${__dirname}`);
  }
})();
export const CHAOS_DIR = join(REPO_ROOT, '.chaos');
const REPLICA_SCRIPT = join(CHAOS_DIR, 'build', 'test', 'chaos', 'replica.js');

/** Compiles the replica app (and src with it) into .chaos/build with test/chaos/tsconfig.json. */
export function buildReplicaApp(): void {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [REPO_ROOT] });
  execFileSync(process.execPath, [tsc, '-p', join(REPO_ROOT, 'test', 'chaos', 'tsconfig.json')], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
  });
}

/** Fixed clock offsets, in ms, given to the replicas in this order (more replicas spread over ±1 s). */
const SKEWS_MS: Record<number, number[]> = {
  1: [0],
  2: [-400, 600],
  3: [-900, 0, 1000],
  4: [-900, -300, 400, 1000],
  5: [-900, -300, 0, 400, 1000],
};

export function skewsFor(replicas: number): number[] {
  return (
    SKEWS_MS[replicas] ??
    Array.from({ length: replicas }, (_, i) => Math.round(-1000 + (2000 * i) / (replicas - 1) / 100) * 100)
  );
}

export interface ChaosOptions {
  replicas: number;
  /** Faults are injected until this much time has passed (one fault of each kind at least). */
  faultPhaseMs: number;
  /** `fixed`: the kinds in FAULT_KINDS order, over and over; `shuffled`: a new random order per cycle. */
  order: 'fixed' | 'shuffled';
  seed: number;
  /** Lock TTL of the job. @default 1500 */
  ttlMs?: number;
  /** Added after a fault's end plus the TTL before the system counts as healthy again. @default 2000 */
  settleMs?: number;
  /** Where the logs go; created if missing. */
  runDir: string;
  /** The command that reproduces the run, recorded in the logs. */
  command: string;
  /** Progress lines. */
  progress?: (line: string) => void;
}

interface Replica {
  id: string;
  skewMs: number;
  logFile: string;
  outFile: string;
  tail: JsonLinesTail<ReplicaRecord>;
  process?: ChildProcess;
  pid?: number;
  killedAt?: number;
  exited?: Promise<void>;
}

/** Open executions seen in the logs: replica id → its execution under way. */
type OpenExecutions = Map<string, { exec: string; pid: number; start: number }>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A small seeded generator (mulberry32), so a run's choices can be replayed with its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs replicas of the chaos app as child processes against a private redis-server and injects
 * faults one at a time: SIGKILL of a replica mid-job (then a restart), SIGSTOP/SIGCONT of a
 * replica for longer than the TTL, Redis killed and started again, Redis frozen with SIGSTOP.
 * Each replica keeps a fixed clock skew (libfaketime) for its lifetime. Everything it does is
 * written to `<runDir>/driver.jsonl`; the replicas write `<runDir>/replica-<id>.jsonl`.
 */
export class FaultDriver {
  readonly ttlMs: number;
  readonly settleMs: number;
  private readonly next: () => number;
  private readonly log: JsonLinesWriter;
  private readonly replicas: Replica[];
  private readonly open: OpenExecutions = new Map();
  private readonly readyPids = new Set<number>();
  private readonly faketime = findLibfaketime();
  private redis: TestRedis | undefined;

  constructor(private readonly options: ChaosOptions) {
    this.ttlMs = options.ttlMs ?? 1500;
    this.settleMs = options.settleMs ?? 2000;
    this.next = random(options.seed);
    mkdirSync(options.runDir, { recursive: true });
    this.log = new JsonLinesWriter(join(options.runDir, 'driver.jsonl'));
    const skews = skewsFor(options.replicas);
    this.replicas = skews.map((skewMs, i) => {
      const id = `r${i + 1}`;
      const logFile = join(options.runDir, `replica-${id}.jsonl`);
      return {
        id,
        skewMs,
        logFile,
        outFile: join(options.runDir, `replica-${id}.out`),
        tail: new JsonLinesTail(logFile),
      };
    });
  }

  /** Runs the whole scenario and stops everything it started, also when it fails. */
  async run(): Promise<void> {
    try {
      await this.scenario();
    } finally {
      await this.stopAll();
      this.log.close();
    }
  }

  private async scenario(): Promise<void> {
    if (!existsSync(REPLICA_SCRIPT)) throw new Error(`${REPLICA_SCRIPT} is missing: build it with buildReplicaApp()`);
    this.redis = await startTestRedis();
    if (!this.redis.controllable) throw new Error('The chaos run needs a redis-server it can stop (unset REDIS_URL).');
    const skewed = this.replicas.some((replica) => replica.skewMs !== 0);
    if (skewed && !this.faketime) this.say('libfaketime not found: the replicas run without clock skew');
    this.log.write({
      type: 'run',
      at: monoMs(),
      wallMinusMonoMs: Date.now() - monoMs(),
      ttlMs: this.ttlMs,
      settleMs: this.settleMs,
      seed: this.options.seed,
      redisPort: this.redis.port,
      replicas: this.replicas.map(({ id, skewMs }) => ({ id, skewMs: this.faketime ? skewMs : 0 })),
      faketime: this.faketime,
      command: this.options.command,
    } satisfies DriverRecord);

    await Promise.all(this.replicas.map((replica) => this.spawnReplica(replica)));
    const steadyStart = monoMs();
    this.say(`${this.replicas.length} replicas ready; redis on port ${this.redis.port}`);
    await this.idle(3_000);

    const phaseEnd = monoMs() + this.options.faultPhaseMs;
    let done = 0;
    for (let cycle = 0; done < FAULT_KINDS.length || monoMs() < phaseEnd; cycle++) {
      const kinds = this.options.order === 'fixed' || cycle === 0 ? [...FAULT_KINDS] : this.shuffled(FAULT_KINDS);
      for (const kind of kinds) {
        if (done >= FAULT_KINDS.length && monoMs() >= phaseEnd) break;
        await this.inject(kind, cycle === 0);
        done++;
        // Let the fault's effects pass (TTL + settle), then leave some healthy ticks to check.
        await this.idle(this.ttlMs + this.settleMs + 2_500 + this.next() * 2_000);
      }
    }
    this.log.write({ type: 'steady', start: steadyStart, end: monoMs() } satisfies DriverRecord);
  }

  /** Injects one fault. In the first cycle replica faults always hit the replica running the job. */
  private async inject(kind: FaultKind, firstCycle: boolean): Promise<void> {
    switch (kind) {
      case 'replica-kill':
        return this.killReplica(firstCycle || this.next() < 0.75);
      case 'replica-stop': {
        // The first time, long enough for another replica to take over before the frozen one resumes.
        const pauseMs = firstCycle ? this.ttlMs + 1_500 : this.ttlMs + 700 + this.next() * 1_000;
        return this.stopReplica(firstCycle || this.next() < 0.75, pauseMs);
      }
      case 'redis-restart':
        return this.restartRedis(300 + this.next() * 1_200);
      case 'redis-pause':
        return this.pauseRedis(1_500 + this.next() * 1_000);
    }
  }

  private async killReplica(aimAtHolder: boolean): Promise<void> {
    const { replica, midJob } = await this.pickTarget(aimAtHolder);
    const pid = replica.pid!;
    const start = monoMs();
    replica.killedAt = start;
    replica.process!.kill('SIGKILL');
    await replica.exited;
    await sleep(200 + this.next() * 1_300);
    const readyAt = await this.spawnReplica(replica);
    this.fault('replica-kill', replica.id, pid, start, readyAt, midJob, `SIGKILL, restarted as pid ${replica.pid}`);
  }

  private async stopReplica(aimAtHolder: boolean, pauseMs: number): Promise<void> {
    const { replica, midJob } = await this.pickTarget(aimAtHolder);
    const start = monoMs();
    replica.process!.kill('SIGSTOP');
    await sleep(pauseMs);
    replica.process!.kill('SIGCONT');
    const end = monoMs();
    this.fault(
      'replica-stop',
      replica.id,
      replica.pid!,
      start,
      end,
      midJob,
      `SIGSTOP for ${Math.round(end - start)} ms`,
    );
  }

  private async restartRedis(downMs: number): Promise<void> {
    const start = monoMs();
    await this.redis!.kill();
    await sleep(downMs);
    await this.redis!.start();
    const end = monoMs();
    this.fault(
      'redis-restart',
      'redis',
      0,
      start,
      end,
      undefined,
      `SIGKILL, down ${Math.round(end - start)} ms, empty`,
    );
  }

  private async pauseRedis(pauseMs: number): Promise<void> {
    const start = monoMs();
    this.redis!.pause();
    await sleep(pauseMs);
    this.redis!.resume();
    const end = monoMs();
    this.fault('redis-pause', 'redis', 0, start, end, undefined, `SIGSTOP for ${Math.round(end - start)} ms`);
  }

  private fault(
    kind: FaultKind,
    target: string,
    pid: number,
    start: number,
    end: number,
    midJob: boolean | undefined,
    detail: string,
  ): void {
    this.log.write({ type: 'fault', kind, target, pid, start, end, midJob, detail } satisfies DriverRecord);
    const where = midJob === undefined ? '' : midJob ? ' mid-job' : ' (idle)';
    this.say(`${kind} ${target}${where}: ${detail}`);
  }

  /**
   * The replica to hit: when aiming at the holder, one whose execution started 5 to 80 ms ago (so
   * at least 20 ms of its work remain); otherwise, or if none shows up within 5 s, any replica.
   */
  private async pickTarget(aimAtHolder: boolean): Promise<{ replica: Replica; midJob: boolean }> {
    if (aimAtHolder) {
      const deadline = monoMs() + 5_000;
      while (monoMs() < deadline) {
        this.pump();
        const now = monoMs();
        for (const [id, execution] of this.open) {
          const replica = this.replicas.find((candidate) => candidate.id === id)!;
          const age = now - execution.start;
          if (execution.pid === replica.pid && age >= 5 && age <= 80) return { replica, midJob: true };
        }
        await sleep(2);
      }
    }
    const replica = this.replicas[Math.floor(this.next() * this.replicas.length)];
    this.pump();
    return { replica, midJob: this.open.get(replica.id)?.pid === replica.pid };
  }

  /** Starts a replica process and waits for its `ready` record; returns when that was. */
  private async spawnReplica(replica: Replica): Promise<number> {
    const skew = this.faketime && replica.skewMs !== 0;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CHAOS_REPLICA_ID: replica.id,
      CHAOS_LOG_FILE: replica.logFile,
      CHAOS_REDIS_URL: this.redis!.url,
      CHAOS_TTL_MS: String(this.ttlMs),
      NO_COLOR: '1',
    };
    for (const name of ['LD_PRELOAD', 'FAKETIME', 'NODE_OPTIONS', 'REDIS_URL']) delete env[name];
    if (skew) {
      Object.assign(env, {
        LD_PRELOAD: this.faketime!,
        FAKETIME: faketimeOffset(replica.skewMs),
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      });
    }
    const out = openSync(replica.outFile, 'a');
    const child = spawn(process.execPath, [REPLICA_SCRIPT], { cwd: REPO_ROOT, env, stdio: ['ignore', out, out] });
    closeSync(out);
    const at = monoMs();
    const pid = child.pid!;
    killOnExit(child); // whatever happens to the driver, its replicas must not outlive it
    Object.assign(replica, { process: child, pid, killedAt: undefined });
    replica.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        const killedAt = replica.pid === pid ? (replica.killedAt ?? null) : null;
        this.log.write({
          type: 'exit',
          replica: replica.id,
          pid,
          at: monoMs(),
          code,
          signal,
          expected: killedAt !== null,
          killedAt,
        } satisfies DriverRecord);
        if (killedAt === null) this.say(`replica ${replica.id} (pid ${pid}) exited by itself: ${code ?? signal}`);
        resolve();
      }),
    );
    const deadline = at + 30_000;
    while (!this.readyPids.has(pid)) {
      if (monoMs() > deadline) throw new Error(`replica ${replica.id} (pid ${pid}) was not ready in 30 s`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`replica ${replica.id} (pid ${pid}) exited while booting; see ${replica.outFile}`);
      }
      await sleep(10);
      this.pump();
    }
    const readyAt = monoMs();
    this.log.write({ type: 'spawn', replica: replica.id, pid, skewMs: skew ? replica.skewMs : 0, at, readyAt });
    return readyAt;
  }

  /** Reads what the replicas logged since last time, to know who is mid-job and who is ready. */
  private pump(): void {
    for (const replica of this.replicas) {
      for (const record of replica.tail.read()) {
        if (record.type === 'ready') this.readyPids.add(record.pid);
        else if (record.type === 'start') {
          this.open.set(replica.id, { exec: record.exec, pid: record.pid, start: record.start });
        } else if (record.type === 'end' && this.open.get(replica.id)?.exec === record.exec) {
          this.open.delete(replica.id);
        }
      }
    }
  }

  /** Waits, keeping the view of open executions current. */
  private async idle(ms: number): Promise<void> {
    const until = monoMs() + ms;
    while (monoMs() < until) {
      await sleep(Math.min(50, Math.max(1, until - monoMs())));
      this.pump();
    }
  }

  private async stopAll(): Promise<void> {
    this.log.write({ type: 'stop', at: monoMs() } satisfies DriverRecord);
    await Promise.all(
      this.replicas.map(async (replica) => {
        const child = replica.process;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        replica.killedAt = monoMs();
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await replica.exited;
      }),
    );
    await this.redis?.dispose();
  }

  private shuffled<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy;
  }

  private say(line: string): void {
    this.options.progress?.(line);
  }
}
