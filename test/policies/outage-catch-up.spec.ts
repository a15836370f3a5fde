import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule, type FailMode } from '../../src';
import { createNamedReplicas, REPLICA } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const runs: { replica: string; tick: number; trigger: string; withoutRedis: boolean; at: number }[] = [];

@Injectable()
class TwoSecondSync {
  constructor(@Inject(REPLICA) private readonly replica: string) {}

  @Cron('*/2 * * * * *')
  @DistributedLock({ key: 'policies:outage', ttlMs: 5_000, catchUp: { windowMs: 60_000, runs: 'all', max: 10 } })
  sync(): void {
    const { tick, trigger, withoutRedis } = currentLock()!;
    runs.push({ replica: this.replica, tick: tick!, trigger, withoutRedis, at: Date.now() });
  }
}

// Redis frozen (SIGSTOP, its data kept) across two or three occurrences, then thawed.
describeWithOwnRedis.each<{ failMode: FailMode }>([{ failMode: 'open' }, { failMode: 'closed' }])(
  'catch-up after Redis was unreachable, fail-$failMode (real Redis, ScheduleModule)',
  ({ failMode }) => {
    let redis: TestRedis;
    let apps: INestApplicationContext[];
    let frozenAt = 0;
    let thawedAt = 0;

    beforeAll(async () => {
      runs.length = 0;
      redis = await startTestRedis();
      apps = await createNamedReplicas(
        ['a', 'b'],
        (replica) => [
          ScheduleModule.forRoot(),
          DistributedLockModule.forRoot({
            url: redis.url,
            replicaName: replica,
            failMode,
            acquireTimeoutMs: 300,
            logger: false,
          }),
        ],
        [TwoSecondSync],
      );
      await sleep(2_500);
      frozenAt = Date.now();
      redis.pause();
      await sleep(5_000);
      redis.resume();
      thawedAt = Date.now();
      await sleep(8_000); // reconnection, the replicas' records sent again, and a few looks
      await Promise.all(apps.map((app) => app.close()));
    }, 40_000);
    afterAll(() => redis.dispose());

    const whileFrozen = () => runs.filter((run) => run.tick > frozenAt && run.tick < thawedAt - 1_000);

    if (failMode === 'open') {
      it('runs the occurrences that came due without Redis (on each replica) and never catches them up', () => {
        const unlocked = whileFrozen();
        expect(unlocked.length).toBeGreaterThanOrEqual(2);
        expect(unlocked.every((run) => run.withoutRedis && run.trigger === 'schedule')).toBe(true);
        expect(runs.filter((run) => run.trigger === 'catch-up')).toEqual([]);
      });
    } else {
      it('skips the occurrences that came due without Redis, then runs each once after the thaw', () => {
        const afterThaw = whileFrozen();
        expect(afterThaw.length).toBeGreaterThanOrEqual(2);
        // Caught up; or, on a busy machine, served by a cron timer that fired only after the thaw.
        expect(afterThaw.every((run) => !run.withoutRedis && run.at > thawedAt)).toBe(true);
        expect(afterThaw.some((run) => run.trigger === 'catch-up')).toBe(true);
        const ticks = runs.map((run) => run.tick);
        expect(new Set(ticks).size).toBe(ticks.length);
      });
    }
  },
);
