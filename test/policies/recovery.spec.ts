import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule } from '../../src';
import { CronSchedule } from '../../src/core/jobs/cron-schedule';
import { createNamedReplicas, RecordingLogger, REPLICA } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const DAILY = '0 0 0 * * *';
const JOB = 'NightlyExport.run';
const KEYS = {
  lock: 'lock:{policies:export}',
  attempts: 'lock:{policies:export}:attempts',
  occurrences: 'lock:{policies:export}:occurrences',
};

const runs: { replica: string; tick: number; trigger: string; attempt: number; fencingToken: number | undefined }[] =
  [];

@Injectable()
class NightlyExport {
  constructor(@Inject(REPLICA) private readonly replica: string) {}

  @Cron(DAILY)
  @DistributedLock({ key: 'policies:export', ttlMs: 1_000, fencing: true, recoverCrashed: true })
  run(): void {
    const { tick, trigger, attempt, fencingToken } = currentLock()!;
    runs.push({ replica: this.replica, tick: tick!, trigger, attempt, fencingToken });
  }
}

// The ledger as a replica that crashed mid-run leaves it: attempt 1 of today's occurrence running
// on instance `holder`, started `agoMs` ago by Redis's clock. A SIGKILLed process test is in
// three-replicas.processes.spec.ts; here the crash is written directly, so each case is exact.
describe('recoverCrashed: a run whose process died is run again, once, elsewhere (real Redis)', () => {
  let redis: TestRedis;
  let apps: INestApplicationContext[] = [];
  const logger = new RecordingLogger();
  const today = new CronSchedule(DAILY).occurrenceAt(Date.now())!;

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(() => redis.dispose());
  beforeEach(async () => {
    runs.length = 0;
    await redis.client().flushall();
  });
  afterEach(async () => {
    await Promise.all(apps.map((app) => app.close()));
    apps = [];
  });

  const crashedRun = async (holder: string, agoMs: number) => {
    const [seconds] = await redis.client().time();
    const value = `1|running|schedule|${Number(seconds) * 1000 - agoMs}|${holder}`;
    await redis.client().hset(KEYS.attempts, `${today}|${JOB}`, value);
    await redis.client().zadd(KEYS.occurrences, today, `${today}|${JOB}`);
    return value;
  };
  const fleet = async () => {
    apps = await createNamedReplicas(
      ['a', 'b'],
      (replica) => [DistributedLockModule.forRoot({ url: redis.url, replicaName: replica, logger })],
      [NightlyExport],
    );
  };

  it('takes over a run whose instance has no heartbeat and whose lock expired: once, as attempt 2, with a new fencing token', async () => {
    await crashedRun('dead-instance', 5_000);
    await fleet();
    const deadline = Date.now() + 8_000;
    while (runs.length === 0 && Date.now() < deadline) await sleep(50);
    await sleep(3_500); // both replicas look again meanwhile

    expect(runs).toEqual([expect.objectContaining({ tick: today, trigger: 'recovery', attempt: 2 })]);
    expect(runs[0].fencingToken).toBeGreaterThan(0);
    expect(await redis.client().hget(KEYS.attempts, `${today}|${JOB}`)).toMatch(/^2\|ok\|recovery\|/);
    expect(logger.messages('warn').filter((line) => line.includes('its process is gone'))).toHaveLength(1);
  }, 20_000);

  it('leaves alone a run whose instance is alive (its heartbeat is set)', async () => {
    await redis.client().set('instances:live-instance', 'replica-z', 'PX', 60_000);
    const value = await crashedRun('live-instance', 5_000);
    await fleet();
    await sleep(4_000);

    expect(runs).toEqual([]);
    expect(await redis.client().hget(KEYS.attempts, `${today}|${JOB}`)).toBe(value);
  }, 20_000);

  it('leaves alone a slow run that still holds its lock, even without a heartbeat', async () => {
    await redis.client().set(KEYS.lock, 'slow-holder-token', 'PX', 60_000);
    const value = await crashedRun('quiet-instance', 5_000);
    await fleet();
    await sleep(4_000);

    expect(runs).toEqual([]);
    expect(await redis.client().hget(KEYS.attempts, `${today}|${JOB}`)).toBe(value);
  }, 20_000);

  it('recovers the crashed run of another replica of the same process: each has its own instance and heartbeat', async () => {
    await fleet();
    const deadline = Date.now() + 5_000;
    let instances: string[] = [];
    while (instances.length < 2 && Date.now() < deadline) {
      instances = await redis.client().keys('instances:*');
      await sleep(50);
    }
    expect((await redis.client().mget(instances)).sort()).toEqual(['a', 'b']);
    const instanceOfA = (await redis.client().get(instances[0])) === 'a' ? instances[0] : instances[1];

    // Replica a stops (its heartbeat expires within 6 s) with today's run left running on it.
    await apps[0].close();
    apps = apps.slice(1);
    await crashedRun(instanceOfA.slice('instances:'.length), 5_000);
    const recovered = Date.now() + 15_000;
    while (runs.length === 0 && Date.now() < recovered) await sleep(100);

    expect(runs).toEqual([expect.objectContaining({ replica: 'b', tick: today, trigger: 'recovery', attempt: 2 })]);
  }, 25_000);
});
