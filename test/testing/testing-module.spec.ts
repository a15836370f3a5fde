import { type INestApplicationContext, Injectable } from '@nestjs/common';
import { Cron, CronExpression, ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { currentLock, DistributedLock, DistributedLockModule, DistributedLockService } from '../../src';
import { DistributedLockTestingModule, InMemoryLockStore } from '../../src/testing';

@Injectable()
class NightlyReport {
  runs = 0;
  tokens: (number | undefined)[] = [];

  @Cron(CronExpression.EVERY_SECOND)
  @DistributedLock({ key: 'report', ttlMs: 10_000, fencing: true })
  build(): string {
    this.runs++;
    this.tokens.push(currentLock()?.fencingToken);
    return 'built';
  }
}

async function replica(store: InMemoryLockStore, name: string, failMode?: 'open' | 'closed') {
  const moduleRef = await Test.createTestingModule({
    imports: [ScheduleModule.forRoot(), DistributedLockTestingModule.forRoot({ store, replica: name, failMode })],
    providers: [NightlyReport],
  }).compile();
  return moduleRef.init();
}

describe('DistributedLockTestingModule', () => {
  let store: InMemoryLockStore;
  let apps: INestApplicationContext[];
  beforeEach(() => {
    jest.useFakeTimers({ now: new Date('2030-05-01T00:00:00.000Z') });
    store = new InMemoryLockStore();
    apps = [];
  });
  afterEach(async () => {
    await Promise.all(apps.map((app) => app.close()));
    jest.useRealTimers();
  });
  const boot = async (name: string, failMode?: 'open' | 'closed') => {
    const app = await replica(store, name, failMode);
    apps.push(app);
    return app;
  };

  it('makes two applications sharing a store behave as replicas: one run per tick, the other skips', async () => {
    const [a, b] = [await boot('a'), await boot('b')];
    jest.advanceTimersByTime(3_000);
    const runs = a.get(NightlyReport).runs + b.get(NightlyReport).runs;
    expect(runs).toBe(3);
    expect(store.runs('NightlyReport.build').map((run) => run.tick)).toEqual([
      Date.parse('2030-05-01T00:00:01.000Z'),
      Date.parse('2030-05-01T00:00:02.000Z'),
      Date.parse('2030-05-01T00:00:03.000Z'),
    ]);
    const skips = store.skips('NightlyReport.build');
    expect(skips).toHaveLength(3);
    expect(new Set(skips.map((skip) => skip.reason))).toEqual(new Set(['tick-served']));
    for (const skip of skips) {
      const ran = store.runs().find((run) => run.tick === skip.tick)!;
      expect(skip.replica).not.toBe(ran.replica);
    }
  });

  it('issues increasing fencing tokens', async () => {
    const app = await boot('a');
    jest.advanceTimersByTime(3_000);
    const [first, second, third] = app.get(NightlyReport).tokens;
    expect(first).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(first!);
    expect(third).toBeGreaterThan(second!);
  });

  it('counts a direct call as the current occurrence, until the served ticks are forgotten', async () => {
    const app = await boot('a');
    const jobs = app.get(NightlyReport);
    await expect(jobs.build()).resolves.toBe('built');
    await expect(jobs.build()).resolves.toBeUndefined();
    expect(store.skips().map((skip) => skip.reason)).toEqual(['tick-served']);
    store.forgetServedTicks();
    await expect(jobs.build()).resolves.toBe('built');
    store.reset();
    expect(store.events).toEqual([]);
    await expect(jobs.build()).resolves.toBe('built');
  });

  it('expires locks by their TTL on the store clock, which fake timers move', async () => {
    const [a, b] = [(await boot('a')).get(DistributedLockService), (await boot('b')).get(DistributedLockService)];
    await expect(a.acquireLock('ledger', 5_000)).resolves.toBe(true);
    await expect(b.acquireLock('ledger', 5_000)).resolves.toBe(false);
    jest.advanceTimersByTime(4_999);
    await expect(b.acquireLock('ledger', 5_000)).resolves.toBe(false);
    jest.advanceTimersByTime(1);
    await expect(b.acquireLock('ledger', 5_000)).resolves.toBe(true);
  });

  it('releases and extends only for the owner', async () => {
    const [a, b] = [(await boot('a')).get(DistributedLockService), (await boot('b')).get(DistributedLockService)];
    await a.acquireLock('ledger', 5_000);
    await b.releaseLock('ledger');
    await expect(b.acquireLock('ledger', 5_000)).resolves.toBe(false);
    jest.advanceTimersByTime(4_000);
    await expect(a.extendLock('ledger', 5_000)).resolves.toBe(true);
    await expect(b.extendLock('ledger', 5_000)).resolves.toBe(false);
    jest.advanceTimersByTime(4_000); // 8 s after taking it, 4 s after extending it
    await expect(b.acquireLock('ledger', 5_000)).resolves.toBe(false);
    await a.releaseLock('ledger');
    await expect(b.acquireLock('ledger', 5_000)).resolves.toBe(true);
  });

  it('keeps a lock for minHoldMs after its release', async () => {
    const [a, b] = [(await boot('a')).get(DistributedLockService), (await boot('b')).get(DistributedLockService)];
    await a.withLock('sweep', 10_000, () => 'swept', { minHoldMs: 2_000 });
    await expect(b.acquireLock('sweep', 10_000)).resolves.toBe(false);
    jest.advanceTimersByTime(2_000);
    await expect(b.acquireLock('sweep', 10_000)).resolves.toBe(true);
  });

  it('simulates an outage: fail-open runs without a lock, fail-closed skips', async () => {
    const open = (await boot('open', 'open')).get(NightlyReport);
    const closed = (await boot('closed', 'closed')).get(NightlyReport);
    store.simulateOutage();
    await expect(open.build()).resolves.toBe('built');
    await expect(closed.build()).resolves.toBeUndefined();
    expect(store.events.filter((event) => event.type === 'acquired')).toEqual([
      expect.objectContaining({ replica: 'open', withoutRedis: true }),
    ]);
    expect(store.skips()).toEqual([expect.objectContaining({ replica: 'closed', reason: 'unavailable' })]);
    store.simulateOutage(false);
    // Nothing recorded the occurrence while the store was down: it can still be served.
    await expect(closed.build()).resolves.toBe('built');
  });

  it('pauses a job for every replica until it is resumed', async () => {
    const [a, b] = [(await boot('a')).get(NightlyReport), (await boot('b')).get(NightlyReport)];
    store.pauseJob('NightlyReport.build');
    jest.advanceTimersByTime(2_000);
    expect(a.runs + b.runs).toBe(0);
    expect(store.skips().map((skip) => skip.reason)).toEqual(['paused', 'paused', 'paused', 'paused']);
    store.resumeJob('NightlyReport.build');
    jest.advanceTimersByTime(1_000);
    expect(a.runs + b.runs).toBe(1);
  });

  it('stands in for a bare DistributedLockModule import through overrideModule', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [DistributedLockModule, ScheduleModule.forRoot()],
      providers: [NightlyReport],
    })
      .overrideModule(DistributedLockModule)
      .useModule(DistributedLockTestingModule.forRoot({ store }))
      .compile();
    const app = await moduleRef.init();
    apps.push(app);
    await expect(app.get(NightlyReport).build()).resolves.toBe('built');
    expect(app.get(InMemoryLockStore)).toBe(store);
  });

  it("follows the store's faked clock in a handle's isHeld, as the store frees the lock", async () => {
    const app = await boot('a');
    const locks = app.get(DistributedLockService);
    const lock = (await locks.acquire('handle', 5_000))!;
    expect([lock.isHeld, locks.holdsLock('handle')]).toEqual([true, true]);
    jest.advanceTimersByTime(5_001); // past the TTL on the store's clock, with no real time gone by
    expect([lock.isHeld, locks.holdsLock('handle')]).toEqual([false, false]);
    expect(() => lock.throwIfLost()).toThrow('its TTL passed');
    expect(await locks.acquireLock('handle', 5_000)).toBe(true); // the store freed it too
  });
});
