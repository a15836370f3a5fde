import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

/**
 * The records a chaos run leaves behind, one JSON object per line. Every time is in milliseconds
 * of CLOCK_MONOTONIC (`process.hrtime.bigint()`), which all processes of one Linux machine share
 * and which libfaketime leaves alone when FAKETIME_DONT_FAKE_MONOTONIC=1, so times written by
 * replicas with skewed wall clocks and by the fault driver can be compared directly.
 */

/** A replica process started (`boot`, before Nest) or finished booting (`ready`, jobs scheduled). */
export interface ReplicaLifecycleRecord {
  type: 'boot' | 'ready';
  replica: string;
  pid: number;
  at: number;
  /** `Date.now()` minus the monotonic clock, in this process: its wall clock as libfaketime shifted it. */
  wallMinusMonoMs: number;
}

/** The chaos app's guarded jobs: the lock key each one takes, and the period of its cron schedule. */
export const CHAOS_JOBS = {
  everySecond: { key: 'chaos:every-second', periodMs: 1_000 },
  everyFiveSeconds: { key: 'chaos:every-5-seconds', periodMs: 5_000 },
} as const;

/** Written synchronously when a guarded execution begins, right after the lock was taken. */
export interface ExecutionStartRecord {
  type: 'start';
  /** `<replica>:<pid>:<n>`, unique over the run. */
  exec: string;
  /** The lock key of the job (one of CHAOS_JOBS). */
  job: string;
  replica: string;
  pid: number;
  /**
   * `currentLock().tick`: the scheduled occurrence the library says this firing serves, by the
   * replica's own (possibly skewed) wall clock.
   */
  tick: number | null;
  /** `currentLock().fencingToken`; null when the lock was taken without Redis (fail-open). */
  token: number | null;
  withoutRedis: boolean;
  start: number;
  /** When the acquisition was sent (the handle's `acquiredAt`, converted to the monotonic clock). */
  acquired: number;
  /** What started it (`currentLock().trigger`) and which attempt; absent in logs from before policies. */
  trigger?: string;
  attempt?: number;
}

/** `thrown`: the run failed on purpose (a seeded share of the every-5-seconds job's attempts, see `plannedFailure`). */
export type ExecutionOutcome = 'completed' | 'lost-lock' | 'thrown' | 'error';

/**
 * Whether attempt `attempt` of the every-5-seconds occurrence `tick` fails on purpose: a share
 * `share` of them, chosen by the run's seed, so every replica (and the checker) decides alike.
 */
export function plannedFailure(seed: number, share: number, tick: number, attempt: number): boolean {
  let hash = (seed ^ Math.imul(Math.floor(tick / 1000), 0x9e3779b1) ^ Math.imul(attempt, 0x85ebca6b)) >>> 0;
  hash = Math.imul(hash ^ (hash >>> 16), 0x7feb352d) >>> 0;
  hash = Math.imul(hash ^ (hash >>> 15), 0x846ca68b) >>> 0;
  return ((hash ^ (hash >>> 16)) >>> 0) / 4294967296 < share;
}

/** The policies of the every-5-seconds job (chaos-job.ts), which the checker's "never zero" rule relies on. */
export const EVERY_FIVE_SECONDS_POLICIES = {
  catchUp: { windowMs: 60_000, runs: 'all', max: 10 },
  retry: { attempts: 3, backoffMs: 300 },
  recoverCrashed: true,
  // A catch-up, retry or recovery run holds the lock when the next occurrence comes due: that one
  // then waits and runs after it, where `skip` would leave it unrun.
  overlap: 'buffer-one',
} as const;

/** Written synchronously when the execution ends; a SIGKILLed execution has none. */
export interface ExecutionEndRecord {
  type: 'end';
  exec: string;
  replica: string;
  pid: number;
  outcome: ExecutionOutcome;
  /**
   * For `completed`: read just before the final `throwIfLost()` passed, so the lock was still
   * held at that time. For `lost-lock`: when the loss was noticed.
   */
  end: number;
  /** Read just before the last `throwIfLost()` that passed; null if none passed. */
  lastOk: number | null;
  error?: string;
}

/**
 * Shutdown of a replica: `term` when its SIGTERM listener ran (Nest's shutdown hooks start right
 * after), `shutdown` when Nest reached the app's own `onApplicationShutdown` hook (the library's
 * hooks have run; the process re-raises SIGTERM next).
 */
export interface ReplicaShutdownRecord {
  type: 'term' | 'shutdown';
  replica: string;
  pid: number;
  at: number;
}

/** A `stretch` request applied (replica-control.ts): these executions now run at least `runMs`. */
export interface StretchRecord {
  type: 'stretch';
  request: number;
  replica: string;
  pid: number;
  at: number;
  runMs: number;
  execs: string[];
}

/** A `block` request applied: the event loop busy-waited from `start` to `end` (monotonic ms). */
export interface LoopBlockRecord {
  type: 'block';
  request: number;
  replica: string;
  pid: number;
  /** The scheduled occurrence the block straddles, by the replica's wall clock (ms since the epoch). */
  occurrence: number;
  /** How long before `occurrence`, by the replica's wall clock, the block began. */
  leadMs: number;
  start: number;
  end: number;
}

export type ReplicaRecord =
  | ReplicaLifecycleRecord
  | ExecutionStartRecord
  | ExecutionEndRecord
  | ReplicaShutdownRecord
  | StretchRecord
  | LoopBlockRecord;

export type FaultKind =
  'replica-kill' | 'replica-stop' | 'redis-restart' | 'redis-pause' | 'replica-term' | 'late-timer' | 'fleet-kill';

export const FAULT_KINDS: readonly FaultKind[] = [
  'replica-kill',
  'replica-stop',
  'redis-restart',
  'redis-pause',
  'replica-term',
  'late-timer',
  'fleet-kill',
];

/** What the fault driver writes. */
export type DriverRecord =
  | {
      type: 'run';
      at: number;
      wallMinusMonoMs: number;
      ttlMs: number;
      settleMs: number;
      seed: number;
      redisPort: number;
      replicas: { id: string; skewMs: number }[];
      /** libfaketime library used for the skews, or null when none was found. */
      faketime: string | null;
      command: string;
      /** The share of every-5-seconds attempts that fail on purpose (`plannedFailure`); absent in older logs: none. */
      failureShare?: number;
    }
  | { type: 'spawn'; replica: string; pid: number; skewMs: number; at: number; readyAt: number }
  | {
      type: 'fault';
      kind: FaultKind;
      /** Replica id, 'redis', or 'fleet' (every replica). */
      target: string;
      pid: number;
      start: number;
      /** When the fault was over: process resumed or restarted and ready again. */
      end: number;
      /** For replica faults, whether the target had an execution under way when the fault began. */
      midJob?: boolean;
      /** For late-timer: the every-5-seconds occurrence the block straddled, by the target's clock. */
      occurrence?: number;
      detail: string;
    }
  | {
      type: 'exit';
      replica: string;
      pid: number;
      at: number;
      code: number | null;
      signal: string | null;
      /** The driver killed it (a fault or the end of the run), or it exited as asked by SIGTERM. */
      expected: boolean;
      /** When the driver sent SIGKILL, if it did: the crash time of an execution left without end. */
      killedAt: number | null;
      /** When the driver sent SIGTERM (replica-term), if it did. */
      terminatedAt: number | null;
    }
  | { type: 'steady'; start: number; end: number }
  | { type: 'stop'; at: number };

/** Milliseconds of CLOCK_MONOTONIC, with sub-millisecond precision. */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Appends JSON lines with one `write` system call each, so a SIGKILL never loses a line already written. */
export class JsonLinesWriter {
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  write(record: object): void {
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Reads every complete line of a JSON-lines file (a torn last line, if any, is skipped). */
export function readJsonLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  return parseLines<T>(readFileSync(path, 'utf8')).records;
}

function parseLines<T>(text: string): { records: T[]; consumed: number } {
  const records: T[] = [];
  let consumed = 0;
  for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', consumed)) {
    const line = text.slice(consumed, newline).trim();
    consumed = newline + 1;
    if (line !== '') records.push(JSON.parse(line) as T);
  }
  return { records, consumed };
}

/** Follows a growing JSON-lines file, returning the records added since the last call. */
export class JsonLinesTail<T> {
  private offset = 0;
  private pending = '';

  constructor(readonly path: string) {}

  read(): T[] {
    if (!existsSync(this.path)) return [];
    const fd = openSync(this.path, 'r');
    try {
      const buffer = Buffer.alloc(64 * 1024);
      for (;;) {
        const bytes = readSync(fd, buffer, 0, buffer.length, this.offset);
        if (bytes === 0) break;
        this.offset += bytes;
        this.pending += buffer.toString('utf8', 0, bytes);
      }
    } finally {
      closeSync(fd);
    }
    const { records, consumed } = parseLines<T>(this.pending);
    this.pending = this.pending.slice(consumed);
    return records;
  }
}
