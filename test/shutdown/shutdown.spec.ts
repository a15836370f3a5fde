import { type INestApplicationContext, Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import {
  DistributedLock,
  DistributedLockModule,
  DistributedLockService,
  type DistributedLockOptions,
  LockEngine,
} from '../../src';
import { createReplica } from '../support/create-replica';
import { CAN_CONTROL_REDIS, freePort, startTestRedis, type TestRedis } from '../support/redis-server';
import { lockKeyOf } from '../../src/core/keys';

/** These tests kill, pause or cut off Redis: only a Redis the suite started itself, never one named by REDIS_URL. */
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ACQUIRE_TIMEOUT_MS = 300;
/** Closing waits at most acquireTimeoutMs for the releases, then as long for QUIT; generous for a noisy machine. */
const CLOSE_BOUND_MS = 2 * ACQUIRE_TIMEOUT_MS + 1_500;
/** The name the library gives the connections it opens (CLIENT SETNAME). */
const CONNECTION_NAME = 'dpa-distributed-lock-cron';

/** A guarded job that counts its runs. */
@Injectable()
class ShutdownJob {
  runs = 0;

  @DistributedLock('shutdown:job', 10_000)
  async run(): Promise<'ran'> {
    this.runs++;
    return 'ran';
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

/** Polls `check` until it holds or `withinMs` passes; resolves whether it held. */
async function eventually(check: () => boolean | Promise<boolean>, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

function bootApp(options: DistributedLockOptions): Promise<INestApplicationContext> {
  return createReplica(
    [DistributedLockModule.forRoot({ acquireTimeoutMs: ACQUIRE_TIMEOUT_MS, ...options })],
    [ShutdownJob],
  );
}

describeWithOwnRedis('app.close() with Redis up', () => {
  let redis: TestRedis;
  let observer: Redis;

  const boot = () => bootApp({ host: '127.0.0.1', port: redis.port });
  /** How many connections the library has open on this Redis, as Redis itself lists them. */
  const libraryConnections = async () =>
    ((await observer.client('LIST')) as string).split('\n').filter((line) => line.includes(`name=${CONNECTION_NAME}`))
      .length;

  beforeAll(async () => {
    redis = await startTestRedis();
    observer = redis.client();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('leaves plain locks (acquireLock, acquire without autoExtend) to their TTL: close never deletes a lock its holder may be using', async () => {
    const app = await boot();
    const locks = app.get(DistributedLockService);
    expect(await locks.acquireLock('shutdown:first', 60_000)).toBe(true);
    expect(await locks.acquire('shutdown:handle', 60_000, { minHoldMs: 2_000 })).toBeDefined();
    const keys = ['shutdown:first', 'shutdown:handle'].map((key) => lockKeyOf('', key));

    await app.close();

    expect(await observer.exists(...keys)).toBe(2);
    for (const key of keys) expect(await observer.pttl(key)).toBeGreaterThan(50_000);
    await observer.del(...keys);
  });

  it('closes the connection it opened: the client ends and Redis no longer lists it', async () => {
    const before = await libraryConnections();
    const app = await boot();
    const client = app.get(DistributedLockService).client;
    expect(client.status).toBe('ready');
    expect(await libraryConnections()).toBe(before + 1);

    await app.close();

    await eventually(() => client.status === 'end', 1_000);
    expect(client.status).toBe('end');
    expect(await eventually(async () => (await libraryConnections()) === before, 2_000)).toBe(true);
  });

  it('refuses every lock after close: acquireLock resolves false, jobs are skipped, nothing is written', async () => {
    const app = await boot();
    const locks = app.get(DistributedLockService);
    await app.close();

    expect(await locks.acquireLock('shutdown:after', 10_000)).toBe(false);
    expect(await locks.withLock('shutdown:after', 10_000, () => 'ran')).toEqual({ ran: false, reason: 'closed' });
    expect(await app.get(ShutdownJob).run()).toBeUndefined();
    expect(app.get(ShutdownJob).runs).toBe(0);
    expect(await observer.exists(lockKeyOf('', 'shutdown:after'))).toBe(0);
  });

  it('leaves a client passed with forRoot({ client }) open and usable, and takes its listeners back', async () => {
    const shared = new Redis(redis.port, '127.0.0.1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
    });
    shared.on('error', () => undefined);
    await shared.connect();
    const listeners = () => ({ ready: shared.listenerCount('ready'), error: shared.listenerCount('error') });
    const before = listeners();
    try {
      const app = await bootApp({ client: shared });
      const locks = app.get(DistributedLockService);
      expect(locks.client).toBe(shared);
      expect(await locks.acquireLock('shutdown:shared', 60_000)).toBe(true);

      await app.close();

      await sleep(100);
      expect(shared.status).toBe('ready');
      expect(await shared.ping()).toBe('PONG');
      expect(await shared.exists(lockKeyOf('', 'shutdown:shared'))).toBe(1); // a plain lock keeps its TTL
      expect(listeners()).toEqual(before);
    } finally {
      await shared.quit();
    }
  });

  it('returns promptly while Redis is paused, bounded by about acquireTimeoutMs, and still ends its connection', async () => {
    const app = await boot();
    const locks = app.get(DistributedLockService);
    const client = locks.client;
    expect(await locks.acquireLock('shutdown:paused-a', 60_000)).toBe(true);
    expect(await locks.acquireLock('shutdown:paused-b', 60_000)).toBe(true);

    redis.pause();
    let closeMs: number;
    try {
      ({ ms: closeMs } = await timed(() => app.close()));
    } finally {
      redis.resume();
    }

    expect(closeMs).toBeLessThan(CLOSE_BOUND_MS);
    expect(await locks.acquireLock('shutdown:paused-c', 10_000)).toBe(false);
    await eventually(() => client.status === 'end', 3_000);
    expect(client.status).toBe('end');
    // Whether the releases reached Redis after it resumed or not, neither lock outlives its TTL (60 s) by much:
    // they are either gone or still expiring; what matters here is that close() did not wait for them.
  });

  it('returns promptly when Redis was killed, ends its connection and never reconnects', async () => {
    const app = await boot();
    const locks = app.get(DistributedLockService);
    const client = locks.client;
    expect(await locks.acquireLock('shutdown:killed', 60_000)).toBe(true);
    await redis.kill();
    await sleep(1_000); // Redis stays down a while: the client waits between reconnection attempts

    const { ms } = await timed(() => app.close());

    expect(ms).toBeLessThan(CLOSE_BOUND_MS);
    await redis.start();
    await sleep(2_500); // longer than the longest pause between reconnection attempts (2 s)
    // The restarted server has no connection of an earlier test's: any of the library's is a reconnection.
    expect(await libraryConnections()).toBe(0);
    expect(client.status).toBe('end');
  });
});

describe('app.close() with Redis never up', () => {
  let app: INestApplicationContext;

  beforeAll(async () => {
    app = await bootApp({ host: '127.0.0.1', port: await freePort() }); // fail-open, the default
  });
  afterAll(async () => {
    await app.close(); // a second close is a no-op; this one matters only if the test failed early
  });

  it('returns promptly, ends its connection, and refuses locks after close although fail-open grants them before', async () => {
    const locks = app.get(DistributedLockService);
    const client = locks.client;
    expect(await locks.acquireLock('shutdown:never-up', 10_000)).toBe(true); // fail-open: granted without Redis
    expect(await app.get(ShutdownJob).run()).toBe('ran');
    await sleep(1_000); // Redis stays unreachable a while: the client waits between reconnection attempts

    const { ms } = await timed(() => app.close());

    expect(ms).toBeLessThan(CLOSE_BOUND_MS);
    expect(await locks.acquireLock('shutdown:never-up-after', 10_000)).toBe(false);
    expect(await app.get(ShutdownJob).run()).toBeUndefined();
    expect(app.get(ShutdownJob).runs).toBe(1);
    await eventually(() => client.status === 'end', 3_000);
    expect(client.status).toBe('end');
  });
});

describeWithOwnRedis('LockEngine.close() while its connection is still being set up', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('ends the connection without an unhandled ioredis error event', async () => {
    const consoleErrors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const engine = new LockEngine({ host: '127.0.0.1', port: redis.port, logger: false });
        await new Promise((resolve) => setImmediate(resolve)); // the socket is opening; no handshake yet
        await engine.close();
        await eventually(() => engine.client.status === 'end', 3_000);
        expect(engine.client.status).toBe('end');
      }
      await sleep(100);
      expect(consoleErrors.mock.calls.map((args) => args.map(String).join(' '))).toEqual([]);
    } finally {
      consoleErrors.mockRestore();
    }
  });
});
