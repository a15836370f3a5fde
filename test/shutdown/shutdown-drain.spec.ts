import { Injectable } from '@nestjs/common';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import {
  currentLock,
  DistributedLock,
  DistributedLockModule,
  type DistributedLockOptions,
  DistributedLockService,
  LockEngine,
  type LockEvent,
  LockLostError,
} from '../../src';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { eventually } from '../support/real-time';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { TimerWatch } from '../support/timer-watch';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A guarded job that runs `workMs`, longer than its TTL, and records how it ended. */
@Injectable()
class LongJob {
  workMs = 1_500;
  readonly runs: { start: number; end?: number; lostReason?: unknown }[] = [];

  @DistributedLock('drain:job', 500)
  async run(): Promise<void> {
    const lock = currentLock()!;
    const run: (typeof this.runs)[number] = { start: Date.now() };
    this.runs.push(run);
    await sleep(this.workMs);
    run.end = Date.now();
    run.lostReason = lock.signal.reason;
  }
}

function boot(redis: { port: number }, options: DistributedLockOptions = {}, logger = new RecordingLogger()) {
  return createReplica(
    [DistributedLockModule.forRoot({ host: '127.0.0.1', port: redis.port, logger, ...options })],
    [LongJob],
  );
}

describe('shutdown drains: a running job keeps its lock until it finishes', () => {
  let redis: TestRedis;
  let other: LockEngine;

  beforeAll(async () => {
    redis = await startTestRedis();
    other = new LockEngine({ url: redis.url, logger: false }); // a second replica
  });
  afterAll(async () => {
    await other.close();
    await redis.dispose();
  });

  it('waits for the run in progress, extending its lock, while another replica is refused; then frees it', async () => {
    const logger = new RecordingLogger();
    const app = await boot(redis, {}, logger);
    const job = app.get(LongJob);
    const running = job.run();
    await sleep(200);

    const closed = app.close();
    const attempts: { at: number; taken: boolean }[] = [];
    let closedAt = 0;
    void closed.then(() => (closedAt = Date.now()));
    while (!closedAt) {
      const taken = await other.acquireLock('drain:job', 5_000);
      attempts.push({ at: Date.now(), taken });
      if (taken) await other.releaseLock('drain:job');
      await sleep(50);
    }
    await running;

    const [run] = job.runs;
    expect(run.end).toBeDefined(); // not cut off
    expect(run.lostReason).toBeUndefined(); // never told its lock was lost: it kept it
    // 1.3 s of the run were left at close, over twice the 500 ms TTL: only extension kept it.
    expect(attempts.filter((attempt) => attempt.at < run.end!).every((attempt) => !attempt.taken)).toBe(true);
    expect(closedAt).toBeGreaterThanOrEqual(run.end!);
    expect(await redis.client().exists('lock:{drain:job}')).toBe(0);
    expect(logger.messages('log')).toContainEqual(
      expect.stringMatching(/^Shutdown waited \d+ ms for 1 run\(s\) to finish/),
    );
  });

  it('skips new runs from the moment closing starts', async () => {
    const app = await boot(redis);
    const job = app.get(LongJob);
    job.workMs = 300;
    const running = job.run();
    await sleep(50);
    const closed = app.close();
    await job.run(); // a timer firing during the drain
    await Promise.all([running, closed]);
    expect(job.runs).toHaveLength(1);
  });

  it('abandons a run still going after shutdownTimeoutMs: aborts its signal, stops extending, never deletes its lock', async () => {
    const logger = new RecordingLogger();
    const app = await boot(redis, { shutdownTimeoutMs: 300 }, logger);
    const job = app.get(LongJob);
    job.workMs = 1_200;
    const running = job.run();
    await sleep(100);

    await app.close();
    // Closing is over, the run goes on: its lock is still there, no longer extended.
    const pttl = await redis.client().pttl('lock:{drain:job}');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(500);
    expect(logger.messages('warn')).toContainEqual(expect.stringContaining('Shutdown left 1 run(s) still going'));
    await running;
    const [run] = job.runs;
    expect(run.lostReason).toBeInstanceOf(LockLostError);
    expect(String((run.lostReason as Error).message)).toContain('shutdownTimeoutMs 300');
  });

  it('undoes an acquisition still in flight when closing starts: its job does not run, its lock is gone at once', async () => {
    const app = await boot(redis);
    const job = app.get(LongJob);
    const acquiring = job.run(); // its SET is on the wire
    await app.close();
    await acquiring;
    expect(job.runs).toHaveLength(0);
    expect(await redis.client().exists('lock:{drain:job}')).toBe(0);
    expect(await other.acquireLock('drain:job', 1_000)).toBe(true);
    await other.releaseLock('drain:job');
  });

  it('names the runs it left in the order they started, one that ended between them left out', async () => {
    const engine = new LockEngine({ url: redis.url, logger: false, shutdownTimeoutMs: 200 });
    await engine.waitUntilConnected();
    const events: LockEvent[] = [];
    engine.onEvent((event) => events.push(event));
    const keys = ['drain-order:first', 'drain-order:middle', 'drain-order:last'];
    const gates = keys.map(() => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      return { opened, open };
    });
    const runs = keys.map((key, i) => engine.withLock(key, 5_000, () => gates[i].opened));
    await eventually(() => events.filter((event) => event.type === 'acquired').length === keys.length);
    gates[1].open();
    await runs[1];

    await engine.close(); // the first and last are still running after shutdownTimeoutMs
    expect(events.find((event) => event.type === 'drained')).toMatchObject({
      finished: 0,
      abandoned: ['drain-order:first', 'drain-order:last'],
    });
    gates[0].open();
    gates[2].open();
    await Promise.all(runs);
  });

  it('leaves no timer of the library armed after close', async () => {
    const watch = new TimerWatch().start();
    try {
      const engine = new LockEngine({ url: redis.url, logger: false });
      await engine.waitUntilConnected();
      await engine.withLock('drain:timers', 600, () => sleep(400)); // renewals and deadlines
      await engine.acquireLock('drain:plain', 10_000);
      await engine.close();
      expect(await watch.armed()).toEqual([]);
    } finally {
      watch.stop();
    }
  });

  it('leaves no timer armed when its connection had already ended', async () => {
    const engine = new LockEngine({ url: redis.url, logger: false });
    await engine.waitUntilConnected();
    const client = engine.client;
    await client.quit(); // e.g. the app closed the client it was handed
    await new Promise((resolve) => (client.status === 'end' ? resolve(undefined) : client.once('end', resolve)));
    const watch = new TimerWatch().start();
    try {
      await engine.close();
      expect(await watch.armed()).toEqual([]);
    } finally {
      watch.stop();
    }
  });
});

describe('shutdown while the connection is still being set up', () => {
  /** A server that accepts connections and never answers: the client stays "connecting", no error. */
  let silent: Server;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('ends a wait for the connection "not connected": the job does not run, before or after close', async () => {
    const port = (silent.address() as AddressInfo).port;
    const logger = new RecordingLogger();
    const app = await boot({ port }, { acquireTimeoutMs: 600 }, logger);
    const job = app.get(LongJob);
    job.workMs = 10;
    const waiting = job.run(); // waits for the connection; fail-open would run it once that times out
    await sleep(100);
    await app.close();
    await waiting;
    expect(job.runs).toHaveLength(0);
    expect(await app.get(DistributedLockService).waitUntilConnected(100)).toBe(false);
  });
});
