import { Inject, Injectable } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { currentLock, DistributedLock, LockLostError } from '../../src';
import { type ExecutionEndRecord, type JsonLinesWriter, monoMs } from './execution-log';

/** Lock TTL of the chaos job, read when the class is defined (the decorator needs a constant). */
export const CHAOS_TTL_MS = Number(process.env.CHAOS_TTL_MS ?? 1500);
/** Lock name shared by every replica. */
export const CHAOS_LOCK_KEY = 'chaos:every-second';
/** The job pauses this long between two `throwIfLost()` checks. */
const STEP_MS = 20;

/** Where the job writes, and who it is. */
export const CHAOS_LOG = 'CHAOS_LOG';
export interface ChaosLog {
  writer: JsonLinesWriter;
  replica: string;
  /** This process's `Date.now()` minus its monotonic clock. */
  wallMinusMonoMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The job every replica schedules each second: 100 to 400 ms of work in 20 ms steps, checking its
 * lock before each step, logging its start and its end synchronously.
 */
@Injectable()
export class ChaosJob {
  private runs = 0;

  constructor(@Inject(CHAOS_LOG) private readonly log: ChaosLog) {}

  @Cron(CronExpression.EVERY_SECOND, { name: 'chaos-every-second' })
  @DistributedLock({ key: CHAOS_LOCK_KEY, ttlMs: CHAOS_TTL_MS })
  async everySecond(): Promise<void> {
    const lock = currentLock()!;
    const start = monoMs();
    const { writer, replica, wallMinusMonoMs } = this.log;
    const exec = `${replica}:${process.pid}:${++this.runs}`;
    writer.write({
      type: 'start',
      exec,
      replica,
      pid: process.pid,
      tick: lock.tick ?? null,
      token: lock.fencingToken ?? null,
      withoutRedis: lock.withoutRedis,
      start,
      acquired: lock.acquiredAt - wallMinusMonoMs,
    });
    const workMs = 100 + Math.random() * 300;
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
      while (monoMs() - start < workMs) {
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
    }
  }
}
