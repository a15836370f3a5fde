// DistributedLockModule against a real Redis (run.mjs starts one and passes REDIS_URL) under Jest's
// default modern fake timers, turned on before the app exists, as a test file typically does.
import { Injectable } from '@nestjs/common';
import { Cron, CronExpression, ScheduleModule } from '@nestjs/schedule';
import { Test, type TestingModule } from '@nestjs/testing';
import { setTimeout as realSleep } from 'node:timers/promises';
import { DistributedLock, DistributedLockModule, type LockEvent } from 'dpa-distributed-lock-cron';

@Injectable()
class EverySecondJob {
  runs = 0;

  @Cron(CronExpression.EVERY_SECOND)
  @DistributedLock('smoke:fake-timers', 5_000)
  async tick(): Promise<string> {
    this.runs++;
    return 'ran';
  }
}

/** Waits on real time (node:timers/promises is not faked) for what Redis's replies bring about. */
async function eventually(check: () => boolean, withinMs = 5_000): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited >= withinMs) throw new Error(`not within ${withinMs} ms`);
    await realSleep(10);
  }
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms` of real time. */
async function within<T>(what: string, promise: Promise<T>, ms = 5_000): Promise<T> {
  const abort = new AbortController();
  const expired = realSleep(ms, undefined, { signal: abort.signal }).then(
    () => Promise.reject(new Error(`${what} has not settled within ${ms} ms of real time`)),
    () => new Promise<never>(() => undefined), // aborted: `promise` settled first
  );
  try {
    return await Promise.race([promise, expired]);
  } finally {
    abort.abort();
  }
}

/** What the library says, by level. */
class RecordingLogger {
  readonly lines: { level: string; message: string }[] = [];
  verbose = (message: string) => this.lines.push({ level: 'verbose', message });
  debug = (message: string) => this.lines.push({ level: 'debug', message });
  log = (message: string) => this.lines.push({ level: 'log', message });
  warn = (message: string) => this.lines.push({ level: 'warn', message });
  error = (message: string) => this.lines.push({ level: 'error', message });
  complaints(): string[] {
    return this.lines.filter(({ level }) => level === 'warn' || level === 'error').map(({ message }) => message);
  }
}

describe('DistributedLockModule on a real Redis under jest.useFakeTimers()', () => {
  const url = process.env.REDIS_URL;
  const keyPrefix = `smoke-fake-timers-${process.pid}-${Date.now()}:`; // this run's own locks and ticks
  let logger: RecordingLogger;
  let events: LockEvent[];
  let app: TestingModule | undefined;

  beforeAll(() => {
    if (!url) throw new Error('REDIS_URL is not set: run.mjs passes its redis-server');
  });

  beforeEach(() => {
    logger = new RecordingLogger();
    events = [];
    // Jest's defaults: Date, timers, process.nextTick and queueMicrotask are faked. The faked clock
    // starts 100 ms into the current second: a call made in the 50 ms before a second would serve
    // that second (a scheduler's timer may fire that early), and the test's direct call serves this one.
    jest.useFakeTimers({ now: Math.floor(Date.now() / 1_000) * 1_000 + 100 });
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
    jest.useRealTimers();
  });

  it('boots, answers a direct call, runs the schedule the test drives, and closes', async () => {
    app = await Test.createTestingModule({
      imports: [
        ScheduleModule.forRoot(),
        DistributedLockModule.forRoot({ url, keyPrefix, logger, onEvent: (event) => events.push(event) }),
      ],
      providers: [EverySecondJob],
    }).compile();
    await expect(within('init()', app.init())).resolves.toBe(app);

    const job = app.get(EverySecondJob);
    await expect(within('the direct call', job.tick())).resolves.toBe('ran');
    expect(job.runs).toBe(1);

    // One faked second at a time: each tick's lock is taken and released over a real socket.
    for (let second = 1; second <= 3; second++) {
      await jest.advanceTimersByTimeAsync(1_000);
      await eventually(() => job.runs === 1 + second);
    }
    await realSleep(50);
    expect(job.runs).toBe(4);

    const closing = app.close();
    app = undefined;
    await expect(within('close()', closing)).resolves.toBeUndefined();

    // Every run took a real lock: no warning, no outage, no lost lock, no run without Redis, no skip.
    expect({
      warnedOrErrored: logger.complaints(),
      outagesOrLostLocks: events.filter((event) => event.type === 'lost' || event.type.startsWith('outage')),
      ranWithoutRedis: events.filter((event) => event.type === 'acquired' && event.withoutRedis).length,
      skipped: events.filter((event) => event.type === 'skipped'),
    }).toEqual({ warnedOrErrored: [], outagesOrLostLocks: [], ranWithoutRedis: 0, skipped: [] });
  }, 30_000); // about a second when connected; what hangs or complains shows as such, not as Jest's timeout
});
