import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { currentLock, DistributedLock, LockLostError } from '../../src';
import {
  CHAOS_JOBS,
  EVERY_FIVE_SECONDS_POLICIES,
  type ExecutionEndRecord,
  type JsonLinesWriter,
  monoMs,
  plannedFailure,
} from './execution-log';

/** Lock TTL of the chaos jobs, read when the class is defined (the decorator needs a constant). */
export const CHAOS_TTL_MS = Number(process.env.CHAOS_TTL_MS ?? 1500);
/** The job pauses this long between two `throwIfLost()` checks. */
const STEP_MS = 20;

/** Where the job writes, and who it is. */
export const CHAOS_LOG = 'CHAOS_LOG';
export interface ChaosLog {
  writer: JsonLinesWriter;
  replica: string;
  /** This process's `Date.now()` minus its monotonic clock. */
  wallMinusMonoMs: number;
  /** The run's seed and the share of every-5-seconds attempts that fail on purpose. */
  seed: number;
  failureShare: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The jobs every replica schedules, each second and every 5 seconds, under their own locks: 100
 * to 400 ms of work in 20 ms steps (longer if the driver stretches a run), checking the lock
 * before each step, logging the start and the end synchronously.
 */
@Injectable()
export class ChaosJob implements OnApplicationShutdown {
  private runs = 0;
  /** Executions under way: exec id → how long it works. */
  private readonly running = new Map<string, { workMs: number }>();

  constructor(@Inject(CHAOS_LOG) private readonly log: ChaosLog) {}

  @Cron(CronExpression.EVERY_SECOND, { name: 'chaos-every-second' })
  @DistributedLock({ key: CHAOS_JOBS.everySecond.key, ttlMs: CHAOS_TTL_MS })
  everySecond(): Promise<void> {
    return this.work(CHAOS_JOBS.everySecond.key);
  }

  // Coarser than the others' clock skews and timer delays: a firing that comes late must still
  // be named after this occurrence, not the next second, or a second replica runs it again. Its
  // policies make every occurrence run (never zero): catch-up, retry and crash recovery.
  @Cron('*/5 * * * * *', { name: 'chaos-every-5-seconds' })
  @DistributedLock({ key: CHAOS_JOBS.everyFiveSeconds.key, ttlMs: CHAOS_TTL_MS, ...EVERY_FIVE_SECONDS_POLICIES })
  everyFiveSeconds(): Promise<void> {
    return this.work(CHAOS_JOBS.everyFiveSeconds.key);
  }

  /** Makes the executions under way work at least `runMs` from their start; returns their ids. */
  stretch(runMs: number): string[] {
    for (const run of this.running.values()) run.workMs = Math.max(run.workMs, runMs);
    return [...this.running.keys()];
  }

  /** Marks when Nest reached this module's shutdown hook: the library's own hooks ran before. */
  onApplicationShutdown(): void {
    const { writer, replica } = this.log;
    writer.write({ type: 'shutdown', replica, pid: process.pid, at: monoMs() });
  }

  private async work(job: string): Promise<void> {
    const lock = currentLock()!; // before the first await
    const start = monoMs();
    const { writer, replica, wallMinusMonoMs } = this.log;
    const exec = `${replica}:${process.pid}:${++this.runs}`;
    writer.write({
      type: 'start',
      exec,
      job,
      replica,
      pid: process.pid,
      tick: lock.tick ?? null,
      token: lock.fencingToken ?? null,
      withoutRedis: lock.withoutRedis,
      start,
      acquired: lock.acquiredAt - wallMinusMonoMs,
      trigger: lock.trigger,
      attempt: lock.attempt,
    });
    if (job === CHAOS_JOBS.everyFiveSeconds.key && lock.tick !== undefined) {
      if (plannedFailure(this.log.seed, this.log.failureShare, lock.tick, lock.attempt)) {
        finishThrown(writer, exec, replica);
        throw new Error(`planned failure of attempt ${lock.attempt}`);
      }
    }
    const run = { workMs: 100 + Math.random() * 300 };
    this.running.set(exec, run);
    let lastOk: number | null = null;
    const finish = (outcome: ExecutionEndRecord['outcome'], end: number, error?: unknown) =>
      writer.write({
        type: 'end',
        exec,
        replica,
        pid: process.pid,
        outcome,
        end,
        lastOk,
        ...(error !== undefined && { error: String(error) }),
      } satisfies ExecutionEndRecord);
    try {
      while (monoMs() - start < run.workMs) {
        const checkedAt = monoMs();
        lock.throwIfLost();
        lastOk = checkedAt;
        await sleep(STEP_MS);
      }
      // Read the time first: if the check then passes, the lock was still held at `end`.
      const end = monoMs();
      lock.throwIfLost();
      lastOk = end;
      finish('completed', end);
    } catch (error) {
      finish(error instanceof LockLostError ? 'lost-lock' : 'error', monoMs(), error);
      // Thrown on, as an app would: a run of a job with `retry` that lost its lock is attempted again.
      throw error;
    } finally {
      this.running.delete(exec);
    }
  }
}

/** The end record of a run that fails on purpose, written before it throws. */
function finishThrown(writer: JsonLinesWriter, exec: string, replica: string): void {
  const end = monoMs();
  writer.write({
    type: 'end',
    exec,
    replica,
    pid: process.pid,
    outcome: 'thrown',
    end,
    lastOk: null,
  } satisfies ExecutionEndRecord);
}
