import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { killOnExit } from '../support/redis-server';
import {
  type DriverRecord,
  JsonLinesTail,
  type JsonLinesWriter,
  type LoopBlockRecord,
  monoMs,
  type ReplicaRecord,
  type StretchRecord,
} from './execution-log';
import { faketimeOffset } from './faketime';
import { type ControlRequest, sendControl } from './replica-control';

/** How a replica process ended, as node reported it. */
export interface ExitStatus {
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One replica: its id, clock skew and files, and the process now running it. */
export interface Replica {
  id: string;
  skewMs: number;
  logFile: string;
  outFile: string;
  controlFile: string;
  tail: JsonLinesTail<ReplicaRecord>;
  process?: ChildProcess;
  pid?: number;
  /** When the driver sent SIGKILL to the current process. */
  killedAt?: number;
  /** When the driver sent SIGTERM to the current process. */
  terminatedAt?: number;
  exited?: Promise<ExitStatus>;
}

/** An execution whose start the replicas logged and whose end they have not (yet). */
export interface OpenExecution {
  exec: string;
  job: string;
  replica: string;
  pid: number;
  start: number;
}

export interface ReplicaSetOptions {
  /** The compiled replica app. */
  script: string;
  cwd: string;
  runDir: string;
  skews: number[];
  ttlMs: number;
  /** The run's seed, and the share of every-5-seconds attempts that fail on purpose (`plannedFailure`). */
  seed: number;
  failureShare: number;
  /** libfaketime, or null to run every replica on the real clock. */
  faketime: string | null;
  /** The driver's log, where exits are recorded. */
  log: JsonLinesWriter;
  say: (line: string) => void;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The replica processes of a chaos run: starts them (`node` children with their clock skew),
 * records how each one exits, follows their logs to know who is ready and who is mid-job, and
 * carries the driver's requests to them (replica-control.ts).
 */
export class ReplicaSet {
  readonly replicas: Replica[];
  /** Executions under way, by exec id, as of the last `pump()`. */
  readonly open = new Map<string, OpenExecution>();
  private readonly readyPids = new Set<number>();
  private readonly answers = new Map<number, StretchRecord | LoopBlockRecord>();
  private lastRequest = 0;

  constructor(private readonly options: ReplicaSetOptions) {
    this.replicas = options.skews.map((skewMs, i) => {
      const id = `r${i + 1}`;
      const logFile = join(options.runDir, `replica-${id}.jsonl`);
      return {
        id,
        skewMs,
        logFile,
        outFile: join(options.runDir, `replica-${id}.out`),
        controlFile: join(options.runDir, `control-${id}.json`),
        tail: new JsonLinesTail(logFile),
      };
    });
  }

  /** Starts a replica process and waits for its `ready` record; returns when that was. */
  async spawn(replica: Replica, redisUrl: string): Promise<number> {
    const { faketime } = this.options;
    const skew = faketime !== null && replica.skewMs !== 0;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CHAOS_REPLICA_ID: replica.id,
      CHAOS_LOG_FILE: replica.logFile,
      CHAOS_CONTROL_FILE: replica.controlFile,
      CHAOS_REDIS_URL: redisUrl,
      CHAOS_TTL_MS: String(this.options.ttlMs),
      CHAOS_SEED: String(this.options.seed),
      CHAOS_FAILURE_SHARE: String(this.options.failureShare),
      NO_COLOR: '1',
    };
    for (const name of ['LD_PRELOAD', 'FAKETIME', 'NODE_OPTIONS', 'REDIS_URL']) delete env[name];
    if (skew) {
      Object.assign(env, {
        LD_PRELOAD: faketime,
        FAKETIME: faketimeOffset(replica.skewMs),
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      });
    }
    const out = openSync(replica.outFile, 'a');
    const child = spawn(process.execPath, [this.options.script], {
      cwd: this.options.cwd,
      env,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    const at = monoMs();
    const pid = child.pid!;
    killOnExit(child); // whatever happens to the driver, its replicas must not outlive it
    Object.assign(replica, { process: child, pid, killedAt: undefined, terminatedAt: undefined });
    replica.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve(this.recordExit(replica, pid, code, signal))),
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
    this.options.log.write({
      type: 'spawn',
      replica: replica.id,
      pid,
      skewMs: skew ? replica.skewMs : 0,
      at,
      readyAt,
    } satisfies DriverRecord);
    return readyAt;
  }

  /** Reads what the replicas logged since last time: who is ready, who is mid-job, what they answered. */
  pump(): void {
    for (const replica of this.replicas) {
      for (const record of replica.tail.read()) {
        switch (record.type) {
          case 'ready':
            this.readyPids.add(record.pid);
            break;
          case 'start':
            this.open.set(record.exec, {
              exec: record.exec,
              job: record.job,
              replica: replica.id,
              pid: record.pid,
              start: record.start,
            });
            break;
          case 'end':
            this.open.delete(record.exec);
            break;
          case 'stretch':
          case 'block':
            this.answers.set(record.request, record);
            break;
        }
      }
    }
  }

  /** The executions under way in process `pid`, as of the last `pump()`. */
  openIn(pid: number | undefined): OpenExecution[] {
    return [...this.open.values()].filter((execution) => execution.pid === pid);
  }

  /** Asks the replica to stretch its executions under way to `runMs`; its answer, or undefined after `timeoutMs`. */
  async stretch(replica: Replica, runMs: number, timeoutMs: number): Promise<StretchRecord | undefined> {
    const answer = await this.request(replica, { kind: 'stretch', runMs }, timeoutMs);
    return answer?.type === 'stretch' ? answer : undefined;
  }

  /** Asks the replica to block its event loop across an occurrence; the block once over, or undefined after `timeoutMs`. */
  async blockLoop(
    replica: Replica,
    block: { everyMs: number; leadMs: number; blockMs: number },
    timeoutMs: number,
  ): Promise<LoopBlockRecord | undefined> {
    const answer = await this.request(replica, { kind: 'block', ...block }, timeoutMs);
    return answer?.type === 'block' ? answer : undefined;
  }

  private async request(
    replica: Replica,
    request: DistributiveOmit<ControlRequest, 'id'>,
    timeoutMs: number,
  ): Promise<StretchRecord | LoopBlockRecord | undefined> {
    const id = ++this.lastRequest;
    sendControl(replica.pid!, replica.controlFile, { ...request, id });
    const deadline = monoMs() + timeoutMs;
    for (;;) {
      this.pump();
      const answer = this.answers.get(id);
      if (answer || monoMs() > deadline) return answer;
      await sleep(timeoutMs > 2_000 ? 20 : 2);
    }
  }

  /** Kills every replica process still running, by PID. */
  async stopAll(): Promise<void> {
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
  }

  private recordExit(replica: Replica, pid: number, code: number | null, signal: NodeJS.Signals | null): ExitStatus {
    const current = replica.pid === pid;
    const killedAt = current ? (replica.killedAt ?? null) : null;
    const terminatedAt = current ? (replica.terminatedAt ?? null) : null;
    // A SIGTERMed replica is expected to end by itself: Nest raises SIGTERM again after its hooks.
    const drained = terminatedAt !== null && (code === 0 || signal === 'SIGTERM');
    const at = monoMs();
    this.pump();
    for (const execution of this.openIn(pid)) this.open.delete(execution.exec); // cut off, if any
    this.options.log.write({
      type: 'exit',
      replica: replica.id,
      pid,
      at,
      code,
      signal,
      expected: killedAt !== null || drained,
      killedAt,
      terminatedAt,
    } satisfies DriverRecord);
    if (killedAt === null && !drained) {
      this.options.say(`replica ${replica.id} (pid ${pid}) exited by itself: ${code ?? signal}`);
    }
    return { at, code, signal };
  }
}
