import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule } from '../../src';
import { CronSchedule } from '../../src/core/jobs/cron-schedule';
import { createNamedReplicas, REPLICA } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const DAILY = '0 0 0 * * *';
const runs: { replica: string; trigger: string; attempt: number }[] = [];

@Injectable()
class NightlyImport {
  constructor(@Inject(REPLICA) private readonly replica: string) {}

  @Cron(DAILY)
  @DistributedLock({ key: 'policies:import', ttlMs: 1_000, recoverCrashed: true })
  async run(): Promise<void> {
    const { trigger, attempt } = currentLock()!;
    runs.push({ replica: this.replica, trigger, attempt });
    await sleep(1_500); // ends while Redis is frozen
  }
}

// A run that ended while Redis could not be reached (frozen 9 s: past the lock's TTL and the 6 s
// heartbeat): its end is written to the ledger once Redis is back, and no replica runs it again.
describeWithOwnRedis('a run that ended during an outage, with recoverCrashed (real Redis)', () => {
  let redis: TestRedis;
  let apps: INestApplicationContext[];

  beforeAll(async () => {
    redis = await startTestRedis();
    apps = await createNamedReplicas(
      ['a', 'b'],
      (replica) => [
        DistributedLockModule.forRoot({
          url: redis.url,
          replicaName: replica,
          acquireTimeoutMs: 300,
          logger: false,
        }),
      ],
      [NightlyImport],
    );
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis.dispose();
  });

  it('is recorded when Redis is back (its scripts loaded ahead, its write sent again), and never recovered', async () => {
    const run = apps[0].get(NightlyImport).run() as unknown as Promise<void>;
    await sleep(300);
    redis.pause();
    await run; // its ledger write and release wait for Redis
    await sleep(8_700);
    redis.resume();
    await sleep(9_000); // reconnection, heartbeats, several looks of replica b

    expect(runs).toEqual([{ replica: 'a', trigger: 'schedule', attempt: 1 }]);
    const today = new CronSchedule(DAILY).occurrenceAt(Date.now())!;
    const entry = await redis.client().hget('lock:{policies:import}:attempts', `${today}|NightlyImport.run`);
    // Ended after its lock was presumed lost (no extension could reach Redis): recorded as such.
    expect(entry).toMatch(/^1\|lost\|schedule\|/);
  }, 40_000);
});
