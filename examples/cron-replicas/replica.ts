import { NestFactory } from '@nestjs/core';
import { DistributedLockService } from 'dpa-distributed-lock-cron';
import { AppModule } from './app.module';
import { replicaName, report } from './replica-messages';

/** One replica of the app, as one pod or container would run it. Started by demo.ts. */
async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });

  let closing = false;
  const close = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(0), 3_000).unref(); // do not linger if Redis is already gone
    await app.close(); // releases this replica's locks and closes its Redis connection
    process.exit(0);
  };
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
  // The launcher holds the other end of stdin: if it dies, this replica stops too.
  process.stdin.once('end', close).resume();

  const connected = await app.get(DistributedLockService).waitUntilConnected(5_000);
  report({ type: 'ready', replica: replicaName(), pid: process.pid, connected });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
