import { LockEngine, type LockEvent, LockLostError } from '../../src/core';
import { LockEvents } from '../../src/core/events/lock-events';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('lock events on a real Redis', () => {
  let redis: TestRedis;
  const engines: LockEngine[] = [];
  const engine = (events?: LockEvent[]): LockEngine => {
    const created = new LockEngine({ url: redis.url, logger: false, onEvent: events && ((e) => events.push(e)) });
    engines.push(created);
    return created;
  };

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((created) => created.close()));
    jest.restoreAllMocks();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('reports a job acquired and run on one engine, and skipped on the other with the reason', async () => {
    const [aEvents, bEvents]: LockEvent[][] = [[], []];
    const [a, b] = [engine(aEvents), engine(bEvents)];
    const tick = Date.now() - 1_000;
    let release!: () => void;
    let startedAt = 0;
    let started!: () => void;
    const holding = new Promise<void>((resolve) => (started = resolve));
    const work = () => {
      startedAt = performance.now();
      started();
      return new Promise<void>((resolve) => (release = resolve));
    };
    const running = a.runJob('Reports.nightly', 'nightly', 10_000, work, { tick });
    await holding; // a holds the lock now (a fixed pause was outrun once on a busy machine)
    const next = tick + 500;
    await expect(b.runJob('Reports.nightly', 'nightly', 10_000, () => 'ran', { tick: next })).resolves.toBeUndefined();
    const workedMs = performance.now() - startedAt;
    release();
    await running;
    await expect(b.runJob('Reports.nightly', 'nightly', 10_000, () => 'ran', { tick })).resolves.toBeUndefined();

    const job = 'Reports.nightly';
    expect(aEvents).toEqual([
      expect.objectContaining({ type: 'acquired', key: 'nightly', job, tick, withoutRedis: false }),
      expect.objectContaining({ type: 'ran', key: 'nightly', job, tick, outcome: 'ok', error: undefined }),
    ]);
    expect(aEvents[0]).toHaveProperty('latencyMs', expect.any(Number));
    expect((aEvents[1] as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(workedMs);
    expect(bEvents).toEqual([
      { type: 'skipped', key: 'nightly', job, tick: next, reason: 'held' },
      { type: 'skipped', key: 'nightly', job, tick, reason: 'tick-served' },
    ]);
  });

  it('reports a run that threw with its error, and one that lost its lock as lost', async () => {
    const events: LockEvent[] = [];
    const locks = engine(events);
    const failure = new Error('report failed');
    await expect(locks.withLock('failing', 10_000, () => Promise.reject(failure))).rejects.toBe(failure);
    await locks.withLock('stolen', 900, async () => {
      await redis.client().del('lock:{stolen}');
      await redis.client().set('lock:{stolen}', 'someone else');
      await sleep(500); // the renewal at ttl/3 finds the token gone
    });
    const ran = events.filter((event) => event.type === 'ran');
    expect(ran).toEqual([
      expect.objectContaining({ key: 'failing', outcome: 'error', error: failure }),
      expect.objectContaining({ key: 'stolen', outcome: 'lost' }),
    ]);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'lost', key: 'stolen', error: expect.any(LockLostError) }),
    );
  });

  it('reports a run that released its lock itself as ok, not lost', async () => {
    const events: LockEvent[] = [];
    await engine(events).withLock('early', 10_000, (lock) => lock.release());
    expect(events.filter((event) => event.type === 'ran')).toEqual([
      expect.objectContaining({ key: 'early', outcome: 'ok' }),
    ]);
  });

  it('reports extensions of a long run', async () => {
    const events: LockEvent[] = [];
    await engine(events).withLock('long', 300, () => sleep(450));
    const extended = events.filter((event) => event.type === 'extended');
    expect(extended.length).toBeGreaterThanOrEqual(2);
    expect(extended[0]).toEqual({ type: 'extended', key: 'long', job: undefined, tick: undefined, ttlMs: 300 });
  });

  it('reports what closing waited for and what it left', async () => {
    const events: LockEvent[] = [];
    const locks = new LockEngine({
      url: redis.url,
      logger: false,
      shutdownTimeoutMs: 200,
      onEvent: (e) => events.push(e),
    });
    let finish!: () => void;
    const finishing = new Promise<void>((resolve) => (finish = resolve));
    void locks.withLock('finishes', 10_000, () => finishing);
    const untilAborted = (lock: { signal: AbortSignal }) =>
      new Promise((resolve) => lock.signal.addEventListener('abort', resolve));
    void locks.withLock('hangs', 10_000, untilAborted);
    // Both runs under way (a busy machine may take a while to connect), then closing starts and one of them ends.
    while (!(locks.holdsLock('finishes') && locks.holdsLock('hangs'))) await sleep(5);
    const closing = locks.close();
    finish();
    await closing;
    expect(events.filter((event) => event.type === 'lost')).toEqual([
      expect.objectContaining({ key: 'hangs', error: expect.any(LockLostError) }),
    ]);
    expect(events.find((event) => event.type === 'drained')).toEqual({
      type: 'drained',
      finished: 1,
      abandoned: ['hangs'],
      waitedMs: expect.any(Number),
    });
  });

  (CAN_CONTROL_REDIS ? it : it.skip)(
    'reports an outage when it starts and when it ends, with how long it lasted',
    async () => {
      const events: LockEvent[] = [];
      const locks = engine(events);
      await locks.waitUntilConnected();
      await redis.stop();
      const down = performance.now();
      await locks.acquireLock('during-outage', 1_000); // fail-open, decided without Redis
      await redis.start();
      await locks.waitUntilConnected(10_000);
      const outage = events.filter((event) => event.type === 'outage-started' || event.type === 'outage-ended');
      expect(outage).toEqual([
        {
          type: 'outage-started',
          store: expect.stringContaining(`:${redis.port}`),
          reason: expect.any(String),
          durationMs: undefined,
        },
        {
          type: 'outage-ended',
          store: expect.stringContaining(`:${redis.port}`),
          reason: expect.any(String),
          durationMs: expect.any(Number),
        },
      ]);
      expect((outage[1] as { durationMs: number }).durationMs).toBeLessThanOrEqual(performance.now() - down);
    },
  );

  it('builds no event while no one listens, and stops when the listener is removed', async () => {
    const emit = jest.spyOn(LockEvents.prototype, 'emit');
    const locks = engine();
    await locks.withLock('quiet', 1_000, () => 'done');
    expect(emit).not.toHaveBeenCalled();
    const seen: LockEvent[] = [];
    const stop = locks.onEvent((event) => seen.push(event));
    await locks.withLock('quiet', 1_000, () => 'done');
    stop();
    await locks.withLock('quiet', 1_000, () => 'done');
    expect(seen.map((event) => event.type)).toEqual(['acquired', 'ran']);
  });

  it('logs a listener that throws, and still decides and runs', async () => {
    const errors: string[] = [];
    const locks = new LockEngine({
      url: redis.url,
      logger: { warn() {}, error: (message) => errors.push(message) },
      onEvent: () => {
        throw new Error('listener broke');
      },
    });
    engines.push(locks);
    await expect(locks.withLock('robust', 1_000, () => 'done')).resolves.toEqual({ ran: true, result: 'done' });
    expect(errors).toContain('A lock event listener threw on "acquired": listener broke');
  });
});
