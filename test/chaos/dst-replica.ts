/**
 * The app of test/policies/dst-faketime.processes.spec.ts, run as its own `node` process under libfaketime
 * (its wall clock set to a daylight-saving change): `node .chaos/build/test/chaos/dst-replica.js`
 * with DST_REDIS_URL and DST_LOG_FILE set. Two jobs at 02:30 Europe/Paris, one per
 * `dst.springForward` option, on a real ScheduleModule.
 */
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule } from '../../src';
import { JsonLinesWriter } from './execution-log';

/** What the DST replica logs, one JSON line each. */
export type DstRecord =
  { type: 'ready'; wallClock: number } | { type: 'run'; job: 'endOfGap' | 'skip'; tick: number; wallClock: number };

const LOG = 'DST_LOG';

@Injectable()
class NightlyJobs {
  constructor(@Inject(LOG) private readonly writer: JsonLinesWriter) {}

  @Cron('0 30 2 * * *', { timeZone: 'Europe/Paris' })
  @DistributedLock({ key: 'dst:end-of-gap', ttlMs: 5_000, dst: { springForward: 'run-at-end-of-gap' } })
  endOfGap(): void {
    this.writer.write({
      type: 'run',
      job: 'endOfGap',
      tick: currentLock()!.tick!,
      wallClock: Date.now(),
    } satisfies DstRecord);
  }

  @Cron('0 30 2 * * *', { timeZone: 'Europe/Paris' })
  @DistributedLock({ key: 'dst:skip', ttlMs: 5_000, dst: { springForward: 'skip' } })
  skip(): void {
    this.writer.write({
      type: 'run',
      job: 'skip',
      tick: currentLock()!.tick!,
      wallClock: Date.now(),
    } satisfies DstRecord);
  }
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const writer = new JsonLinesWriter(required('DST_LOG_FILE'));

  @Module({
    imports: [
      ScheduleModule.forRoot(),
      DistributedLockModule.forRoot({
        url: required('DST_REDIS_URL'),
        skipLogLevel: 'log',
        // Redis keeps real time (libfaketime cannot start redis-server, see the spec): a state kept
        // this long lets it judge an occurrence of a night months away from its own clock.
        stateRetentionMs: 400 * 86_400_000,
      }),
    ],
    providers: [NightlyJobs, { provide: LOG, useValue: writer }],
  })
  class DstReplicaModule {}

  const app = await NestFactory.createApplicationContext(DstReplicaModule, { logger: ['log', 'warn', 'error'] });
  app.enableShutdownHooks(['SIGTERM']);
  writer.write({ type: 'ready', wallClock: Date.now() } satisfies DstRecord);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
