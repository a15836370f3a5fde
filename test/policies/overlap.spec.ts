import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { currentLock, DistributedLock, DistributedLockModule } from '../../src';
import { createNamedReplicas, REPLICA } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// Longer than two 2 s periods: during each run, one occurrence comes due and waits, and the next
// one comes due while it waits (at 2 s and 4 s into a run, a second from either end of it).
const RUN_MS = 5_000;

const runs: { replica: string; tick: number; start: number; end: number }[] = [];

@Injectable()
class SlowSync {
  constructor(@Inject(REPLICA) private readonly replica: string) {}

  @Cron('*/2 * * * * *')
  @DistributedLock({ key: 'policies:slow', ttlMs: 1_000, overlap: 'buffer-one' })
  async sync(): Promise<void> {
    const tick = currentLock()!.tick!;
    const start = Date.now();
    await sleep(RUN_MS);
    runs.push({ replica: this.replica, tick, start, end: Date.now() });
  }
}

describe("overlap: 'buffer-one' runs the occurrence that came due during a run right after it (real Redis)", () => {
  let redis: TestRedis;
  let apps: INestApplicationContext[];
  let ledger: Record<string, string>;

  beforeAll(async () => {
    redis = await startTestRedis();
    apps = await createNamedReplicas(
      ['a', 'b'],
      (replica) => [
        ScheduleModule.forRoot(),
        DistributedLockModule.forRoot({ url: redis.url, replicaName: replica, logger: false }),
      ],
      [SlowSync],
    );
    // The first occurrence comes up to 2 s after boot; the third run starts 10 s after it.
    await sleep(14_000);
    await Promise.all(apps.map((app) => app.close())); // waits for the run in progress
    ledger = await redis.client().hgetall('lock:{policies:slow}:attempts');
  }, 40_000);
  afterAll(() => redis.dispose());

  it('never runs two at once, nor an occurrence twice', () => {
    const sorted = [...runs].sort((x, y) => x.start - y.start);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i].start).toBeGreaterThanOrEqual(sorted[i - 1].end - 50);
    expect(new Set(runs.map((run) => run.tick)).size).toBe(runs.length);
  });

  it('starts a buffered occurrence within about a second after the run it waited behind ends', () => {
    const sorted = [...runs].sort((x, y) => x.start - y.start);
    expect(sorted.length).toBeGreaterThanOrEqual(3);
    const late = sorted.slice(1).filter((run) => run.start - run.tick > 500); // started after its occurrence
    expect(late.length).toBeGreaterThanOrEqual(2);
    for (const run of late) {
      const before = sorted[sorted.indexOf(run) - 1];
      expect(run.start - before.end).toBeLessThan(1_500);
    }
  });

  it('buffers at most one: an occurrence that comes due while another waits is skipped', () => {
    const statuses = Object.values(ledger).map((value) => value.split('|')[1]);
    expect(statuses).toContain('skipped');
    const skippedTicks = Object.entries(ledger)
      .filter(([, value]) => value.startsWith('0|skipped|'))
      .map(([member]) => Number(member.split('|')[0]));
    expect(skippedTicks.every((tick) => !runs.some((run) => run.tick === tick))).toBe(true);
  });
});
