/**
 * The app of test/policies/three-replicas.processes.spec.ts, run as its own `node` process:
 * `node .chaos/build/test/chaos/policy-replica.js` with POLICY_REDIS_URL, POLICY_REPLICA and
 * POLICY_LOG_FILE set. Two `@Cron` jobs with policies, on a real ScheduleModule:
 * - `catchUpJob`, every 2 s, `catchUp: { runs: 'all', max: 2 }`;
 * - `latestJob`, every 2 s, `catchUp: { runs: 'latest' }`;
 * - `longJob`, every 10 s, `recoverCrashed` (and a catch-up window so recovery may outlast a
 *   period), whose run takes 4 s, four TTLs of 1 s: its lock is extended while it runs.
 */
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule } from '../../src';
import { JsonLinesWriter, monoMs } from './execution-log';

export const LONG_RUN_MS = 4_000;
export const LONG_TTL_MS = 1_000;

/** The replica's jobs. */
export type PolicyJobName = 'catchUpJob' | 'latestJob' | 'longJob';

/** A guarded run starting or ending, as a policy replica logs it. */
export interface PolicyRunRecord {
  type: 'start' | 'end';
  job: PolicyJobName;
  replica: string;
  pid: number;
  tick: number;
  trigger: string;
  attempt: number;
  at: number;
}

/** What a policy replica logs, one JSON line each, times on the monotonic clock. */
export type PolicyRecord = { type: 'ready'; replica: string; pid: number; at: number } | PolicyRunRecord;

const LOG = 'POLICY_LOG';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

@Injectable()
class PolicyJobs {
  private readonly replica = required('POLICY_REPLICA');

  constructor(@Inject(LOG) private readonly writer: JsonLinesWriter) {}

  @Cron('*/2 * * * * *')
  @DistributedLock({ key: 'policy:catch-up', ttlMs: 5_000, catchUp: { windowMs: 120_000, runs: 'all', max: 2 } })
  catchUpJob(): void {
    this.log('start', 'catchUpJob');
  }

  @Cron('*/2 * * * * *')
  @DistributedLock({ key: 'policy:latest', ttlMs: 5_000, catchUp: { windowMs: 120_000, runs: 'latest' } })
  latestJob(): void {
    this.log('start', 'latestJob');
  }

  @Cron('*/10 * * * * *')
  @DistributedLock({
    key: 'policy:long',
    ttlMs: LONG_TTL_MS,
    recoverCrashed: true,
    catchUp: { windowMs: 120_000, runs: 'latest' },
  })
  async longJob(): Promise<void> {
    const lock = this.log('start', 'longJob');
    await sleep(LONG_RUN_MS);
    this.write(lock, 'end');
  }

  private log(type: 'start', job: PolicyJobName) {
    const { tick, trigger, attempt } = currentLock()!; // before the first await
    const record = { job, tick: tick!, trigger, attempt };
    this.write(record, type);
    return record;
  }

  private write(record: { job: PolicyJobName; tick: number; trigger: string; attempt: number }, type: 'start' | 'end') {
    this.writer.write({
      type,
      ...record,
      replica: this.replica,
      pid: process.pid,
      at: monoMs(),
    } satisfies PolicyRecord);
  }
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const writer = new JsonLinesWriter(required('POLICY_LOG_FILE'));
  const replica = required('POLICY_REPLICA');

  @Module({
    imports: [
      ScheduleModule.forRoot(),
      DistributedLockModule.forRoot({ url: required('POLICY_REDIS_URL'), replicaName: replica, fencing: true }),
    ],
    providers: [PolicyJobs, { provide: LOG, useValue: writer }],
  })
  class PolicyReplicaModule {}

  const app = await NestFactory.createApplicationContext(PolicyReplicaModule, { logger: ['warn', 'error'] });
  app.enableShutdownHooks(['SIGTERM']);
  writer.write({ type: 'ready', replica, pid: process.pid, at: monoMs() } satisfies PolicyRecord);
}

// The spec imports the record type from here; only `node policy-replica.js` starts the app.
if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
