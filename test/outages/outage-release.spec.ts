import { createServer, type Server, type Socket, connect } from 'node:net';
import type { INestApplicationContext } from '@nestjs/common';
import type Redis from 'ioredis';
import { DistributedLockModule, DistributedLockService } from '../../src';
import { createReplica } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';
import { lockKeyOf } from '../../src/core/keys';

/** These tests kill, pause or cut off Redis: only a Redis the suite started itself, never one named by REDIS_URL. */
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ACQUIRE_TIMEOUT_MS = 300;
/** "Within about acquireTimeoutMs", with a generous margin: the machine running the tests is noisy. */
const DECISION_BOUND_MS = 1_500;

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

/** Polls `check` until it holds or `withinMs` passes; resolves whether it held. */
async function eventually(check: () => Promise<boolean>, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/**
 * A TCP relay in front of Redis that can drop everything, as a network partition does: unlike a
 * paused Redis, which runs what it was sent once it resumes, a partition loses what was sent.
 */
class PartitionProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private dropping = false;

  private constructor(redisPort: number) {
    this.server = createServer((client) => {
      const upstream = connect(redisPort, '127.0.0.1');
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ]) {
        this.sockets.add(from);
        from.on('data', (chunk: Buffer) => {
          if (!this.dropping) to.write(chunk);
        });
        from.on('close', () => {
          this.sockets.delete(from);
          to.destroy();
        });
        from.on('error', () => to.destroy());
      }
    });
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  static async start(redisPort: number): Promise<PartitionProxy> {
    const proxy = new PartitionProxy(redisPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** From now on, bytes in either direction are dropped. */
  partition(): void {
    this.dropping = true;
  }

  /** Ends the partition; the connections that lived through it are reset, as they are after a real one. */
  heal(): void {
    for (const socket of this.sockets) socket.destroy();
    this.dropping = false;
  }

  async close(): Promise<void> {
    this.heal();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describeWithOwnRedis('releasing a lock while Redis cannot answer', () => {
  let redis: TestRedis;
  let proxy: PartitionProxy;
  let observer: Redis;
  let behindProxy: INestApplicationContext;
  let direct: INestApplicationContext;

  const boot = (port: number) =>
    createReplica([DistributedLockModule.forRoot({ host: '127.0.0.1', port, acquireTimeoutMs: ACQUIRE_TIMEOUT_MS })]);

  beforeAll(async () => {
    redis = await startTestRedis();
    proxy = await PartitionProxy.start(redis.port);
    observer = redis.client();
    [behindProxy, direct] = await Promise.all([boot(proxy.port), boot(redis.port)]);
  });
  afterAll(async () => {
    await Promise.all([behindProxy.close(), direct.close()]);
    await proxy.close();
    await redis.dispose();
  });

  it('resolves a release that Redis, partitioned away, never receives; the lock stays in Redis and expires by its TTL', async () => {
    const holder = behindProxy.get(DistributedLockService);
    const other = direct.get(DistributedLockService);
    const lock = lockKeyOf('', 'release:partitioned');
    const acquiredAt = Date.now();
    expect(await holder.acquireLock('release:partitioned', 1_500)).toBe(true);

    proxy.partition();
    const { value, ms } = await timed(() => holder.releaseLock('release:partitioned'));

    expect(value).toBeUndefined();
    expect(ms).toBeLessThan(DECISION_BOUND_MS);
    expect(holder.holdsLock('release:partitioned')).toBe(false);
    // The release never arrived: the key is still there, with what is left of its TTL, and still excludes others.
    const pttl = await observer.pttl(lock);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1_500);
    expect(await other.acquireLock('release:partitioned', 10_000)).toBe(false);

    expect(await eventually(async () => (await observer.exists(lock)) === 0, 3_000)).toBe(true);
    expect(Date.now() - acquiredAt).toBeGreaterThanOrEqual(1_400); // gone by its TTL, not sooner
    expect(await other.acquireLock('release:partitioned', 10_000)).toBe(true);
    await other.releaseLock('release:partitioned');
  });

  it('reconnects once the partition heals, and locks in Redis again', async () => {
    const holder = behindProxy.get(DistributedLockService);
    const reconnected = new Promise<boolean>((resolve) => {
      holder.client.once('ready', () => resolve(true));
      setTimeout(resolve, 8_000, false).unref();
    });
    proxy.heal();
    expect(await reconnected).toBe(true);

    expect(await holder.acquireLock('release:healed', 10_000)).toBe(true);
    expect(await observer.exists(lockKeyOf('', 'release:healed'))).toBe(1);
    await holder.releaseLock('release:healed');
    expect(await observer.exists(lockKeyOf('', 'release:healed'))).toBe(0);
  });

  it('resolves a release that times out while Redis is paused; the lock does not outlive its TTL', async () => {
    const holder = direct.get(DistributedLockService);
    const lock = lockKeyOf('', 'release:paused');
    const acquiredAt = Date.now();
    expect(await holder.acquireLock('release:paused', 1_500)).toBe(true);
    const pttl = await observer.pttl(lock);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1_500);

    redis.pause();
    let release: { value: void; ms: number };
    try {
      release = await timed(() => holder.releaseLock('release:paused'));
    } finally {
      redis.resume();
    }

    expect(release.value).toBeUndefined();
    expect(release.ms).toBeLessThan(DECISION_BOUND_MS);
    expect(holder.holdsLock('release:paused')).toBe(false);
    // The paused Redis runs the late release when it resumes, or the TTL ends the lock: either way it is gone in time.
    expect(await eventually(async () => (await observer.exists(lock)) === 0, 1_500 + 500)).toBe(true);
    expect(Date.now() - acquiredAt).toBeLessThan(1_500 + 1_000);
  });
});
