/**
 * One replica of the chaos app, run as its own `node` process by the fault driver:
 * `node .chaos/build/test/chaos/replica.js` with CHAOS_REPLICA_ID, CHAOS_LOG_FILE, CHAOS_REDIS_URL,
 * CHAOS_CONTROL_FILE (and CHAOS_TTL_MS) in its environment, and libfaketime preloaded when its
 * clock is skewed. SIGTERM shuts it down through Nest's shutdown hooks, as in a rolling restart;
 * SIGUSR2 makes it read a request from the driver (replica-control.ts).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { DistributedLockModule } from '../../src';
import { CHAOS_LOG, ChaosJob, type ChaosLog } from './chaos-job';
import { JsonLinesWriter, monoMs } from './execution-log';
import { busyWait, type ControlRequest, listenForControl, nextOccurrence } from './replica-control';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const replica = required('CHAOS_REPLICA_ID');
  const writer = new JsonLinesWriter(required('CHAOS_LOG_FILE'));
  const wallMinusMonoMs = Date.now() - monoMs();
  const seed = Number(process.env.CHAOS_SEED ?? 0);
  const failureShare = Number(process.env.CHAOS_FAILURE_SHARE ?? 0);
  const log: ChaosLog = { writer, replica, wallMinusMonoMs, seed, failureShare };
  const pid = process.pid;
  writer.write({ type: 'boot', replica, pid, at: monoMs(), wallMinusMonoMs });

  @Module({
    imports: [
      ScheduleModule.forRoot(),
      DistributedLockModule.forRoot({ url: required('CHAOS_REDIS_URL'), keyPrefix: 'chaos:', fencing: true }),
    ],
    providers: [ChaosJob, { provide: CHAOS_LOG, useValue: log }],
  })
  class ChaosReplicaModule {}

  const app = await NestFactory.createApplicationContext(ChaosReplicaModule, { logger: ['log', 'warn', 'error'] });
  // Registered before Nest's listener, so it logs first; `once`, so that when Nest has run its
  // hooks and raises SIGTERM again, no listener is left and the process ends.
  process.once('SIGTERM', () => writer.write({ type: 'term', replica, pid, at: monoMs() }));
  app.enableShutdownHooks(['SIGTERM']);

  const job = app.get(ChaosJob);
  listenForControl(required('CHAOS_CONTROL_FILE'), (request: ControlRequest) => {
    if (request.kind === 'stretch') {
      const execs = job.stretch(request.runMs);
      writer.write({ type: 'stretch', request: request.id, replica, pid, at: monoMs(), runMs: request.runMs, execs });
      return;
    }
    const { id, everyMs, leadMs, blockMs } = request;
    const now = Date.now();
    const occurrence = nextOccurrence(now, everyMs, leadMs);
    // Timers run in the order they are due: this one, due before the cron timers of `occurrence`, holds them back.
    setTimeout(
      () => {
        const start = monoMs();
        const actualLeadMs = occurrence - Date.now();
        busyWait(blockMs);
        const end = monoMs();
        writer.write({ type: 'block', request: id, replica, pid, occurrence, leadMs: actualLeadMs, start, end });
      },
      occurrence - leadMs - now,
    );
  });

  writer.write({ type: 'ready', replica, pid, at: monoMs(), wallMinusMonoMs: Date.now() - monoMs() });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
