import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { SchedulerRegistry } from '@nestjs/schedule';
import { DISTRIBUTED_LOCK_CONFIG_NAMESPACE, distributedLockConfig } from 'dpa-distributed-lock-cron';
import { AppModule } from './app.module.js';
import { SyncService } from './sync.service.js';

/**
 * Boots three replicas of the quick-start app in one process against the Redis named by
 * REDIS_HOST / REDIS_PORT, checks that the library does what the README says, prints one
 * `SMOKE_RESULT {json}` line and sets the exit code. It never calls process.exit(): the process
 * must end by itself once the apps are closed.
 */
const REPLICAS = 3;
const CRON_JOBS = ['daily-sync', 'every-second-above', 'every-second-below'];
const OBSERVE_MS = 3_500;
const MANUAL_KEY = 'smoke:manual';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class SmokeFailure extends Error {}

function check(condition: boolean, message: string, detail?: unknown): void {
  if (!condition) throw new SmokeFailure(detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`);
}

async function bootReplicas(): Promise<INestApplicationContext[]> {
  const booted = await Promise.allSettled(
    Array.from({ length: REPLICAS }, () =>
      NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'], abortOnError: false }),
    ),
  );
  const apps = booted.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const failed = booted.find((outcome) => outcome.status === 'rejected');
  if (failed) {
    await Promise.allSettled(apps.map((app) => app.close()));
    throw failed.reason;
  }
  return apps;
}

function cronJobExists(app: INestApplicationContext, name: string): boolean {
  try {
    return Boolean(app.get(SchedulerRegistry).getCronJob(name));
  } catch {
    return false; // getCronJob throws when no job has that name
  }
}

/** Runs of one every-second job across replicas within [from, to], grouped by wall-clock second. */
function runsPerSecond(services: SyncService[], order: 'above' | 'below', from: number, to: number) {
  const runs = services.flatMap((service, replica) =>
    service.everySecondRuns[order].filter((at) => at >= from && at <= to).map((at) => ({ at, replica })),
  );
  const bySecond = new Map<number, number[]>();
  for (const { at, replica } of runs) {
    const second = Math.floor(at / 1000);
    bySecond.set(second, [...(bySecond.get(second) ?? []), replica]);
  }
  const seconds = [...bySecond.entries()].sort(([a], [b]) => a - b);
  return {
    runs: runs.length,
    seconds: seconds.map(([second, replicas]) => ({ second, replicas })),
    secondsWithSeveralRuns: seconds.filter(([, replicas]) => replicas.length > 1).map(([second]) => second),
  };
}

async function runChecks(apps: INestApplicationContext[], result: Record<string, unknown>): Promise<void> {
  const services = apps.map((app) => app.get(SyncService));

  const connected = services.map((service) => service.isConnected());
  result.connected = connected;
  check(connected.every(Boolean), 'every replica is connected to Redis', connected);

  // distributedLockConfig is built without registerAs: this major's ConfigModule must still read it.
  const namespace = apps[0].get(ConfigService).get<{ host?: string; port?: number }>(DISTRIBUTED_LOCK_CONFIG_NAMESPACE);
  const byKey: unknown = apps[0].get(distributedLockConfig.KEY);
  result.configNamespace = { namespace, byKey };
  check(
    namespace?.host === process.env.REDIS_HOST &&
      namespace?.port === Number(process.env.REDIS_PORT) &&
      JSON.stringify(byKey) === JSON.stringify(namespace),
    'ConfigModule reads REDIS_HOST and REDIS_PORT into the distributedLock namespace, provided under distributedLockConfig.KEY',
    result.configNamespace,
  );
  const provider = distributedLockConfig.asProvider();
  check(
    provider.imports[0].module === ConfigModule && provider.inject[0] === distributedLockConfig.KEY,
    "distributedLockConfig.asProvider() imports this app's ConfigModule.forFeature and injects KEY",
  );

  const registered = Object.fromEntries(CRON_JOBS.map((name) => [name, apps.map((app) => cronJobExists(app, name))]));
  result.cronJobsRegistered = registered;
  check(
    Object.values(registered).every((perReplica) => perReplica.every(Boolean)),
    'every @Cron job is in SchedulerRegistry on every replica, with @DistributedLock above and below @Cron',
    registered,
  );

  // The every-second jobs have been firing since boot; count the runs of a fixed window.
  const from = Date.now();
  await sleep(OBSERVE_MS);
  const to = Date.now();
  const everySecond = {
    above: runsPerSecond(services, 'above', from, to),
    below: runsPerSecond(services, 'below', from, to),
  };
  result.everySecond = { windowMs: to - from, ...everySecond };
  for (const order of ['above', 'below'] as const) {
    const { runs, secondsWithSeveralRuns } = everySecond[order];
    check(
      secondsWithSeveralRuns.length === 0,
      `the every-second job (@DistributedLock ${order} @Cron) runs at most once per second across replicas`,
      everySecond[order],
    );
    // 3.5 s hold 3 or 4 ticks; one missed tick is tolerated on a busy machine.
    check(
      runs >= 2,
      `the every-second job (@DistributedLock ${order} @Cron) runs about once per second`,
      everySecond[order],
    );
  }

  const dailyResults = await Promise.all(services.map((service) => service.dailySync()));
  const dailyRuns = services.map((service) => service.dailyRuns);
  const dailyTokenAfter = await services[0].storedToken('cron:daily-sync');
  result.dailySync = { results: dailyResults, runsPerReplica: dailyRuns, lockLeftBehind: dailyTokenAfter !== null };
  check(
    dailyRuns.reduce((sum, runs) => sum + runs, 0) === 1,
    'dailySync() called on three replicas at once runs exactly once',
    dailyRuns,
  );
  check(
    dailyResults.filter((value) => value === 'synced').length === 1 &&
      dailyResults.filter((value) => value === undefined).length === REPLICAS - 1,
    'dailySync() resolves its result on the replica that ran and undefined on the others',
    dailyResults,
  );
  check(dailyTokenAfter === null, 'dailySync() releases its lock when it ends');

  const [owner, other, third] = services;
  const manual: Record<string, unknown> = {};
  result.manualLocks = manual;
  manual.ownerAcquires = await owner.acquireLock(MANUAL_KEY, 60_000);
  check(manual.ownerAcquires === true, 'acquireLock() on a free key returns true');
  manual.otherAcquires = await other.acquireLock(MANUAL_KEY, 60_000);
  check(manual.otherAcquires === false, 'acquireLock() on a key held by another replica returns false');
  const token = await owner.storedToken(MANUAL_KEY);
  check(token !== null, 'the held lock is stored in Redis under lock:{key}');
  await other.releaseLock(MANUAL_KEY);
  manual.keptAfterNonOwnerRelease = (await owner.storedToken(MANUAL_KEY)) === token;
  check(manual.keptAfterNonOwnerRelease === true, 'releaseLock() by a replica that does not hold the lock leaves it');
  manual.thirdAcquiresAfterNonOwnerRelease = await third.acquireLock(MANUAL_KEY, 60_000);
  check(manual.thirdAcquiresAfterNonOwnerRelease === false, 'the lock is still held after a non-owner release');
  await owner.releaseLock(MANUAL_KEY);
  manual.removedAfterOwnerRelease = (await owner.storedToken(MANUAL_KEY)) === null;
  check(manual.removedAfterOwnerRelease === true, 'releaseLock() by the owner removes the lock');
  manual.otherAcquiresAfterOwnerRelease = await other.acquireLock(MANUAL_KEY, 60_000);
  check(
    manual.otherAcquiresAfterOwnerRelease === true,
    'another replica can take the lock after the owner released it',
  );
  await other.releaseLock(MANUAL_KEY);
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const result: Record<string, unknown> = { ok: false, node: process.version };
  let apps: INestApplicationContext[] = [];
  try {
    apps = await bootReplicas();
    result.bootMs = Date.now() - startedAt;
    await runChecks(apps, result);
    result.ok = true;
  } catch (error) {
    result.error = error instanceof SmokeFailure ? error.message : String((error as Error)?.stack ?? error);
  } finally {
    const closed = await Promise.allSettled(apps.map((app) => app.close()));
    const closeErrors = closed.flatMap((outcome) => (outcome.status === 'rejected' ? [String(outcome.reason)] : []));
    if (closeErrors.length > 0) {
      result.ok = false;
      result.closeErrors = closeErrors;
    }
  }
  result.totalMs = Date.now() - startedAt;
  console.log(`SMOKE_RESULT ${JSON.stringify(result)}`);
  process.exitCode = result.ok ? 0 : 1;
}

void main();
