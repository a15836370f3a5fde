import { type INestApplicationContext, Injectable } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import { performance } from 'node:perf_hooks';
import {
  currentLock,
  DistributedLock,
  DistributedLockModule,
  EARLY_FIRING_TOLERANCE_MS,
  type DistributedLockOptions,
  LockEngine,
  type LockEvent,
} from '../../src';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';
import { TimerWatch } from '../support/timer-watch';
import { eventually, sleep } from '../support/real-time';

/** The real-time milliseconds `work` took, measured on the monotonic clock the test cannot fake. */
async function realMs(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

const ACQUIRE_TIMEOUT_MS = 1_000;

/** A one-second cron job that records the tick each run served. */
@Injectable()
class EverySecondJob {
  readonly ticks: (number | undefined)[] = [];

  @Cron('* * * * * *', { name: 'fake-timers-every-second' })
  @DistributedLock('fake-timers:every-second', 5_000)
  async run(): Promise<string> {
    this.ticks.push(currentLock()?.tick);
    return 'ran';
  }
}

/**
 * What the library logged at warn or error level: under fake timers, there must be nothing. These
 * apps call their @Cron method themselves, without ScheduleModule: the startup warning that no
 * @Cron job would fire is left out (missing-schedule-module.spec.ts pins it).
 */
const complaints = (logger: RecordingLogger) => warnings(logger).concat(logger.messages('error'));
const warnings = (logger: RecordingLogger) =>
  logger.messages('warn').filter((line) => !line.includes('does not import ScheduleModule'));

describe('Jest fake timers against a real Redis', () => {
  let redis: TestRedis;
  let logger: RecordingLogger;
  let timers: TimerWatch;
  let keyPrefix = '';
  let testNumber = 0;
  /** What a test opened: closed again after it (closing twice is harmless), so a failed test leaks nothing. */
  const opened: { close(): Promise<unknown> }[] = [];
  const track = <T extends { close(): Promise<unknown> }>(closable: T): T => (opened.push(closable), closable);
  const replica = async (...args: Parameters<typeof createReplica>) => track(await createReplica(...args));
  const options = (extra: DistributedLockOptions = {}): DistributedLockOptions => ({
    url: redis.url,
    logger,
    keyPrefix,
    acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
    ...extra,
  });

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  beforeEach(() => {
    logger = new RecordingLogger();
    keyPrefix = `fake-timers-${++testNumber}:`; // each test serves its own occurrences
    timers = new TimerWatch().start();
  });
  afterEach(async () => {
    jest.useRealTimers();
    timers.stop();
    await Promise.all(opened.splice(0).map((closable) => closable.close()));
  });
  afterAll(async () => {
    await redis.dispose();
  });

  /** Timers the library left armed; the test's own (sleep) are cleared by the time this runs. */
  const armedByLibrary = async () => (await timers.armed()).filter((stack) => stack.includes('/src/'));

  describe('with process.nextTick kept real (ioredis connects on it)', () => {
    beforeEach(() => {
      jest.useFakeTimers({ doNotFake: ['nextTick'] });
    });

    it('connects, takes, runs under and releases locks, and closes, without the test advancing time', async () => {
      const engine = track(new LockEngine(options()));
      expect(await engine.waitUntilConnected()).toBe(true);
      expect(await engine.acquireLock('plain', 10_000)).toBe(true);
      expect(await engine.acquireLock('plain', 10_000)).toBe(false);
      await engine.releaseLock('plain');
      expect(await redis.client().exists(`${keyPrefix}lock:{plain}`)).toBe(0);
      expect(await engine.withLock('run', 10_000, () => 42)).toEqual({ ran: true, result: 42 });
      expect(await realMs(() => engine.close())).toBeLessThan(ACQUIRE_TIMEOUT_MS);

      expect(complaints(logger)).toEqual([]);
      expect(jest.getTimerCount()).toBe(0);
      expect(await armedByLibrary()).toEqual([]);
    });

    it('boots a Nest app, and runs the job once per faked second, each run serving its faked second', async () => {
      // The faked date stays near the real one: Redis judges ticks against its own clock (see below).
      jest.setSystemTime(Math.floor(Date.now() / 1000) * 1000 + 100);
      const first = Date.now() - 100;
      const app = await replica([ScheduleModule.forRoot(), DistributedLockModule.forRoot(options())], [EverySecondJob]);
      const job = app.get(EverySecondJob);

      // A direct call serves the latest occurrence, named from the faked clock.
      expect(await job.run()).toBe('ran');
      expect(job.ticks).toEqual([first]);

      for (let second = 1; second <= 3; second++) {
        await jest.advanceTimersByTimeAsync(1_000);
        await eventually(() => job.ticks.length === second + 1);
      }
      await sleep(50); // no second run of any faked second
      expect(job.ticks).toEqual([first, first + 1_000, first + 2_000, first + 3_000]);

      expect(await realMs(() => app.close())).toBeLessThan(ACQUIRE_TIMEOUT_MS);
      expect(complaints(logger)).toEqual([]);
      expect(jest.getTimerCount()).toBe(0);
      expect(await armedByLibrary()).toEqual([]);
    });

    it('keeps a lock held across faked minutes: its validity and renewals run on real time', async () => {
      const engine = track(new LockEngine(options()));
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const run = engine.withLock('long', 5_000, async (lock) => {
        await finished;
        lock.throwIfLost();
        return lock.isHeld;
      });
      await eventually(() => engine.holdsLock('long'));
      await jest.advanceTimersByTimeAsync(60_000); // twelve TTLs on the faked clock, a moment of real time
      expect(engine.holdsLock('long')).toBe(true);
      finish();
      expect(await run).toEqual({ ran: true, result: true });
      await engine.close();
      expect(complaints(logger)).toEqual([]);
    });

    (CAN_CONTROL_REDIS ? it : it.skip)(
      'answers by its fail mode within acquireTimeoutMs of real time when Redis stops answering',
      async () => {
        const engine = track(new LockEngine(options({ failMode: 'closed' })));
        expect(await engine.waitUntilConnected()).toBe(true);
        redis.pause();
        try {
          let acquired: boolean | undefined;
          const ms = await realMs(async () => (acquired = await engine.acquireLock('stalled', 10_000)));
          expect(acquired).toBe(false);
          expect(ms).toBeGreaterThanOrEqual(ACQUIRE_TIMEOUT_MS - 50);
          expect(ms).toBeLessThan(ACQUIRE_TIMEOUT_MS + 500);
        } finally {
          redis.resume();
        }
        expect(complaints(logger)).toEqual([expect.stringContaining('no reply within 1000 ms')]);
        await engine.close();
      },
    );

    // Redis's clock names the occurrences every replica shares: a process whose clock says 2030 is
    // refused and warned about, faked or not. A test fakes a date near the real one, or raises
    // tickAheadLimitMs to fake one far ahead.
    it('refuses a tick named from a faked date far ahead of the Redis clock, and runs it within tickAheadLimitMs', async () => {
      jest.setSystemTime(new Date('2030-01-01T00:00:00.500Z'));
      const refusing = await replica([DistributedLockModule.forRoot(options())], [EverySecondJob]);
      expect(await refusing.get(EverySecondJob).run()).toBeUndefined();
      expect(logger.messages('error')).toEqual([
        expect.stringMatching(/Refused tick 2030-01-01T00:00:00.000Z .* ahead of .* Date is faked in this process/),
      ]);
      await refusing.close();

      const tenYearsMs = 10 * 365 * 86_400_000;
      const accepting = await replica(
        [DistributedLockModule.forRoot(options({ tickAheadLimitMs: tenYearsMs }))],
        [EverySecondJob],
      );
      expect(await accepting.get(EverySecondJob).run()).toBe('ran');
      expect(accepting.get(EverySecondJob).ticks).toEqual([Date.parse('2030-01-01T00:00:00Z')]);
      await accepting.close();
    });

    // @nestjs/schedule's own tests fake 2020-01-01: against a real Redis, every occurrence named
    // from that date is older than Redis keeps occurrences for, and is refused. The error says so.
    it('names a faked date far in the past as the cause when Redis refuses every occurrence', async () => {
      jest.setSystemTime(new Date('2020-01-01T00:00:00.500Z'));
      const app = await replica([DistributedLockModule.forRoot(options())], [EverySecondJob]);
      expect(await app.get(EverySecondJob).run()).toBeUndefined();
      expect(logger.messages('error')).toEqual([
        expect.stringMatching(
          /^Refused tick 2020-01-01T00:00:00.000Z .* behind the Redis server's clock.* Date is faked in this process \(fake timers set it to 2020-01-01T00:00:00\.\d{3}Z\).* DistributedLockTestingModule .* doNotFake: \['Date'\]/,
        ),
      ]);
    });
  });

  describe('with jest.useFakeTimers() once the connection is up', () => {
    it('takes and releases locks, runs a decorated call, and closes, on real time', async () => {
      const app = await replica([DistributedLockModule.forRoot(options())], [EverySecondJob]);
      const engine = track(new LockEngine(options()));
      expect(await engine.waitUntilConnected()).toBe(true);
      jest.useFakeTimers(); // process.nextTick and queueMicrotask faked too, as Jest does by default

      expect(await app.get(EverySecondJob).run()).toBe('ran');
      expect(await engine.acquireLock('plain', 10_000)).toBe(true);
      await engine.releaseLock('plain');
      expect(await engine.withLock('run', 10_000, () => 42)).toEqual({ ran: true, result: 42 });

      expect(await realMs(() => Promise.all([engine.close(), app.close()]))).toBeLessThan(ACQUIRE_TIMEOUT_MS);
      expect(complaints(logger)).toEqual([]);
      expect(await armedByLibrary()).toEqual([]);
    });

    it('sees a connection that became ready while its ready event waits on the faked process.nextTick', async () => {
      const engine = track(new LockEngine(options({ acquireTimeoutMs: 5_000 })));
      jest.useFakeTimers(); // ioredis's connector already queued its connection on the real nextTick
      let connected: boolean | undefined;
      // As soon as the client is ready, not at the end of the wait (Nest's init() waits for this).
      expect(await realMs(async () => (connected = await engine.waitUntilConnected()))).toBeLessThan(2_500);
      expect(connected).toBe(true);
      expect(await engine.acquireLock('plain', 10_000)).toBe(true);
      await engine.close();
      expect(complaints(logger)).toEqual([]);
      expect(await armedByLibrary()).toEqual([]);
    });
  });

  describe("as @nestjs/schedule's own tests do it: compile(), then jest.useFakeTimers(), then init()", () => {
    it('boots at once, runs the job once per faked second, and closes, without a warning', async () => {
      const moduleRef = track(
        await Test.createTestingModule({
          imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot(options({ acquireTimeoutMs: 5_000 }))],
          providers: [EverySecondJob],
        }).compile(),
      );
      jest.useFakeTimers({ now: Math.floor(Date.now() / 1000) * 1000 + 100 });
      const first = Date.now() - 100;
      expect(await realMs(() => moduleRef.init())).toBeLessThan(2_500);
      const job = moduleRef.get(EverySecondJob);
      for (let second = 1; second <= 3; second++) {
        await jest.advanceTimersByTimeAsync(1_000);
        await eventually(() => job.ticks.length === second);
      }
      expect(job.ticks).toEqual([first + 1_000, first + 2_000, first + 3_000]);
      expect(await realMs(() => moduleRef.close())).toBeLessThan(ACQUIRE_TIMEOUT_MS);
      expect(complaints(logger)).toEqual([]);
      expect(await armedByLibrary()).toEqual([]);
    });
  });

  // Jest's default fake timers fake process.nextTick, on which ioredis opens its socket: the
  // library creates its own clients with the real one, so they connect all the same.
  describe('with jest.useFakeTimers() before the app is created', () => {
    it('boots at once, runs the job once per faked second holding its lock in Redis, and closes, without a warning', async () => {
      jest.useFakeTimers({ now: Math.floor(Date.now() / 1000) * 1000 + 100 });
      const first = Date.now() - 100;
      const acquired: boolean[] = [];
      const onEvent = (event: LockEvent) => event.type === 'acquired' && acquired.push(event.withoutRedis);
      let app: INestApplicationContext | undefined;
      const bootMs = await realMs(async () => {
        app = await replica(
          [ScheduleModule.forRoot(), DistributedLockModule.forRoot(options({ acquireTimeoutMs: 5_000, onEvent }))],
          [EverySecondJob],
        );
      });
      expect(bootMs).toBeLessThan(2_500);
      const job = app!.get(EverySecondJob);
      expect(await job.run()).toBe('ran');
      for (let second = 1; second <= 2; second++) {
        await jest.advanceTimersByTimeAsync(1_000);
        await eventually(() => job.ticks.length === second + 1);
      }
      expect(job.ticks).toEqual([first, first + 1_000, first + 2_000]);
      expect(acquired).toEqual([false, false, false]); // every run held its lock in Redis
      expect(await realMs(() => app!.close())).toBeLessThan(ACQUIRE_TIMEOUT_MS);
      expect(complaints(logger)).toEqual([]);
      expect(await armedByLibrary()).toEqual([]);
    });

    it('serves the next faked second with a direct call made in the 50 ms before it, as an early timer would', async () => {
      const next = Math.floor(Date.now() / 1000) * 1000 + 1_000;
      jest.useFakeTimers({ now: next - EARLY_FIRING_TOLERANCE_MS + 20 });
      const skipped: (number | undefined)[] = [];
      const onEvent = (event: LockEvent) => event.type === 'skipped' && skipped.push(event.tick);
      const app = await replica(
        [ScheduleModule.forRoot(), DistributedLockModule.forRoot(options({ acquireTimeoutMs: 5_000, onEvent }))],
        [EverySecondJob],
      );
      const job = app.get(EverySecondJob);
      expect(await job.run()).toBe('ran');
      expect(job.ticks).toEqual([next]);

      // The scheduler fires at `next`, 30 faked ms later: that occurrence has run. The one after runs.
      await jest.advanceTimersByTimeAsync(EARLY_FIRING_TOLERANCE_MS);
      await eventually(() => skipped.length === 1);
      expect(skipped).toEqual([next]);
      await jest.advanceTimersByTimeAsync(1_000);
      await eventually(() => job.ticks.length === 2);
      expect(job.ticks).toEqual([next, next + 1_000]);
      expect(skipped).toEqual([next]);
      await app.close();
      expect(complaints(logger)).toEqual([]);
    });

    it('names the faked process.nextTick when a client passed in was created under it, within its deadlines', async () => {
      jest.useFakeTimers();
      const client = new Redis(redis.url, { enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
      opened.push({ close: async () => client.disconnect() });
      let app: INestApplicationContext | undefined;
      const bootMs = await realMs(async () => {
        app = await replica(
          [DistributedLockModule.forRoot({ client, logger, acquireTimeoutMs: ACQUIRE_TIMEOUT_MS })],
          [EverySecondJob],
        );
      });
      expect(bootMs).toBeLessThan(3 * ACQUIRE_TIMEOUT_MS);
      expect(await app!.get(EverySecondJob).run()).toBe('ran'); // fail-open, the default
      // Never connected since the app started: said as an error, with why.
      expect(complaints(logger)).toEqual([
        expect.stringContaining(
          "not connected after 1000 ms: process.nextTick is faked (jest.useFakeTimers() fakes it by default) and ioredis connects on it; keep it real with jest.useFakeTimers({ doNotFake: ['nextTick'] })",
        ),
      ]);
      expect(await realMs(() => app!.close())).toBeLessThan(ACQUIRE_TIMEOUT_MS + 500);
      expect(await armedByLibrary()).toEqual([]);
    });
  });
});
