/**
 * One replica of the chaos app, run as its own `node` process by the fault driver:
 * `node .chaos/build/test/chaos/replica.js` with CHAOS_REPLICA_ID, CHAOS_LOG_FILE, CHAOS_REDIS_URL
 * (and CHAOS_TTL_MS) in its environment, and libfaketime preloaded when its clock is skewed.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { DistributedLockModule } from '../../src';
import { CHAOS_LOG, ChaosJob, type ChaosLog } from './chaos-job';
import { JsonLinesWriter, monoMs } from './execution-log';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const replica = required('CHAOS_REPLICA_ID');
  const writer = new JsonLinesWriter(required('CHAOS_LOG_FILE'));
  const wallMinusMonoMs = Date.now() - monoMs();
  const log: ChaosLog = { writer, replica, wallMinusMonoMs };
  writer.write({ type: 'boot', replica, pid: process.pid, at: monoMs(), wallMinusMonoMs });

  @Module({
    imports: [
      ScheduleModule.forRoot(),
      DistributedLockModule.forRoot({ url: required('CHAOS_REDIS_URL'), keyPrefix: 'chaos:', fencing: true }),
    ],
    providers: [ChaosJob, { provide: CHAOS_LOG, useValue: log }],
  })
  class ChaosReplicaModule {}

  await NestFactory.createApplicationContext(ChaosReplicaModule, { logger: ['log', 'warn', 'error'] });
  writer.write({ type: 'ready', replica, pid: process.pid, at: monoMs(), wallMinusMonoMs: Date.now() - monoMs() });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
