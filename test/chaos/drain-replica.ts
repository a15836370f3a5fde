/**
 * The app of sigterm-drain.processes.spec.ts, run as its own `node` process:
 * `node .chaos/build/test/chaos/drain-replica.js` with DRAIN_REDIS_URL and DRAIN_LOG_FILE set.
 * One `@Interval` job under `@DistributedLock('drain:job', 2000)` whose run takes 3 s, longer than
 * its TTL, so the lock must be extended while it runs; Nest's shutdown hooks run on SIGTERM.
 */
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Interval, ScheduleModule } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule } from '../../src';
import { JsonLinesWriter, monoMs } from './execution-log';

export const DRAIN_LOCK_KEY = 'drain:job';
export const DRAIN_TTL_MS = 2_000;
export const DRAIN_RUN_MS = 3_000;
/** Short, so a replica that keeps acquiring after SIGTERM starts a new run soon after the first ends. */
const INTERVAL_MS = 250;

/** What the drain replica logs, one JSON line each, times on the monotonic clock. */
export type DrainRecord =
  | { type: 'ready' | 'term'; pid: number; at: number }
  | { type: 'start'; run: number; at: number; token: number | null }
  /** `lockLost`: the lock's signal aborted during the run (its extension failed, or it expired). */
  | { type: 'end'; run: number; at: number; lockLost: boolean };

const DRAIN_LOG = 'DRAIN_LOG';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

@Injectable()
class DrainJob {
  private runs = 0;

  constructor(@Inject(DRAIN_LOG) private readonly writer: JsonLinesWriter) {}

  @Interval('drain-job', INTERVAL_MS)
  @DistributedLock(DRAIN_LOCK_KEY, DRAIN_TTL_MS)
  async run(): Promise<void> {
    const lock = currentLock()!; // before the first await
    const run = ++this.runs;
    this.write({ type: 'start', run, at: monoMs(), token: lock.fencingToken ?? null });
    const { signal } = lock;
    await sleep(DRAIN_RUN_MS);
    this.write({ type: 'end', run, at: monoMs(), lockLost: signal.aborted });
  }

  private write(record: DrainRecord): void {
    this.writer.write(record);
  }
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const writer = new JsonLinesWriter(required('DRAIN_LOG_FILE'));

  @Module({
    imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot({ url: required('DRAIN_REDIS_URL') })],
    providers: [DrainJob, { provide: DRAIN_LOG, useValue: writer }],
  })
  class DrainReplicaModule {}

  const app = await NestFactory.createApplicationContext(DrainReplicaModule, { logger: ['log', 'warn', 'error'] });
  // `once`: when Nest has run its hooks and raises SIGTERM again, no listener is left and the process ends.
  process.once('SIGTERM', () => writer.write({ type: 'term', pid: process.pid, at: monoMs() }));
  app.enableShutdownHooks(['SIGTERM']);
  writer.write({ type: 'ready', pid: process.pid, at: monoMs() });
}

// The spec imports the record type and constants from here; only `node drain-replica.js` starts the app.
if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
