import Fastify from 'fastify';
import { schedule } from 'node-cron';
import { cronTick, LockEngine, lockOptionsFromEnvironment } from 'dpa-distributed-lock-cron/core';
import { replicaName, report, runDemoJob } from '../cron-replicas/replica-messages';

const EVERY_SECOND = '* * * * * *';
const JOB = { name: 'fastify.everySecond', key: 'fastify:every-second', ttlMs: 5000 };

/**
 * One replica of a Fastify app that schedules a job every second with node-cron and guards it with
 * the framework-agnostic core (no Nest anywhere). Started by the demo launcher with `--app fastify`.
 */
async function main(): Promise<void> {
  const locks = new LockEngine(lockOptionsFromEnvironment()); // REDIS_HOST, REDIS_PORT, …

  const app = Fastify();
  app.get('/health', async () => ({ redis: locks.isConnected() }));
  await app.listen({ host: '127.0.0.1', port: 0 });

  const task = schedule(EVERY_SECOND, async () => {
    const startedAt = Date.now();
    // cronTick() names the scheduled occurrence, so replicas that fire it at different moments agree.
    const tick = cronTick(EVERY_SECOND, { now: startedAt });
    // runJob records the run under the job's name, for the CLI's `status` and `history`.
    await locks.runJob(JOB.name, JOB.key, JOB.ttlMs, () => runDemoJob(startedAt), { tick });
  });
  // What the operations tools show for this job (decorated Nest methods are declared by themselves).
  await locks.declareJobs([{ ...JOB, cron: EVERY_SECOND, timeZone: null, utcOffset: null }]);

  let closing = false;
  const close = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(0), 3_000).unref(); // do not linger if Redis is already gone
    await task.stop();
    await app.close();
    await locks.close(); // waits for a run in progress, then closes its Redis connection
    process.exit(0);
  };
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
  process.stdin.once('end', close).resume(); // the launcher holds stdin: if it dies, stop too

  // The core entry point is framework-free: nothing of Nest may have been loaded.
  const nestModules = Object.keys(require.cache).filter((path) => path.includes('@nestjs'));
  if (nestModules.length > 0) throw new Error(`@nestjs modules loaded without Nest: ${nestModules[0]}`);

  await locks.waitUntilConnected(5_000);
  const health = (await app.inject({ url: '/health' })).json<{ redis: boolean }>();
  report({ type: 'ready', replica: replicaName(), pid: process.pid, connected: health.redis });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
