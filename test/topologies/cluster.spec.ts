import { Cluster } from 'ioredis';
import { cronTick, LockEngine } from '../../src/core';
import { CAN_START_TOPOLOGIES, startCluster, type TestCluster } from '../support/redis-topologies';

const describeTopology = CAN_START_TOPOLOGIES ? describe : describe.skip;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeTopology('locks on a Redis Cluster', () => {
  jest.setTimeout(60_000);
  let cluster: TestCluster;
  let engines: LockEngine[];

  beforeAll(async () => {
    cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
    const options = {
      clusterNodes: [...cluster.nodes],
      keyPrefix: 'app:',
      acquireTimeoutMs: 500,
      fencing: true,
      logger: false as const,
    };
    engines = [new LockEngine(options), new LockEngine(options)];
    for (const engine of engines) expect(await engine.waitUntilConnected(5_000)).toBe(true);
  });
  afterAll(async () => {
    await Promise.all(engines.map((engine) => engine.close()));
    await cluster.dispose();
  });

  const keys = Array.from({ length: 12 }, (_, index) => `job-${index}`);

  it('spreads locks over the masters, each lock and its state in one slot', async () => {
    const [a, b] = engines;
    const owners = new Set<number>();
    for (const key of keys) {
      expect(await a.acquireLock(key, 10_000)).toBe(true);
      expect(await b.acquireLock(key, 10_000)).toBe(false);
      expect(a.fencingToken(key)).toBeGreaterThan(0);
      owners.add(await cluster.masterIndexForKey(a.keysFor(key).lock));
      expect(await cluster.masterIndexForKey(a.keysFor(key).state)).toBe(
        await cluster.masterIndexForKey(a.keysFor(key).lock),
      );
      await a.releaseLock(key);
    }
    expect(owners.size).toBeGreaterThan(1); // the Lua scripts ran on several masters
  });

  it.each([
    ['a key with a hash tag inside', '', 'a{b}c'],
    ['a key that is a hash tag', '', '{tenant-7}'],
    ['a key ending in "}"', '', 'job}'],
    ['a key with an empty hash tag inside', '', 'a{}b'],
    ['a prefix with a hash tag', 'app{blue}:', 'job'],
    ['a prefix with an unclosed "{"', 'app{', 'job'],
    ['a prefix with a "}"', 'app}', 'job'],
  ])('keeps a lock and its state in one slot with %s', async (_case, keyPrefix, key) => {
    const engine = new LockEngine({ clusterNodes: [...cluster.nodes], keyPrefix, fencing: true, logger: false });
    try {
      expect(await engine.waitUntilConnected(5_000)).toBe(true);
      const { lock, state } = engine.keysFor(key);
      expect(await cluster.masterIndexForKey(state)).toBe(await cluster.masterIndexForKey(lock));
      // A fenced, scheduled acquisition runs one script over both keys: taken in Redis, not fail-open.
      const outcome = await engine.withLock(key, 5_000, (held) => held.fencingToken, {
        tick: cronTick('* * * * * *'),
      });
      expect(outcome).toEqual({ ran: true, result: expect.any(Number) });
    } finally {
      await engine.close();
    }
  });

  it('serves each tick once', async () => {
    const tick = cronTick('* * * * * *'); // an occurrence the Redis clock can judge
    const outcomes = await Promise.all(
      engines.map((engine) => engine.withLock('cluster:tick', 5_000, () => 'ran', { tick })),
    );
    expect(outcomes.filter((outcome) => outcome.ran)).toHaveLength(1);
  });

  it('reuses a given Cluster client', async () => {
    const client = new Cluster([...cluster.nodes], {
      enableOfflineQueue: false,
      redisOptions: { autoResendUnfulfilledCommands: false },
    });
    const engine = new LockEngine({ client, logger: false });
    expect(await engine.waitUntilConnected(5_000)).toBe(true);
    expect(await engine.acquireLock('shared-cluster', 5_000)).toBe(true);
    await engine.close();
    expect(client.status).toBe('ready');
    client.disconnect();
  });

  it('resumes locking a key after its master is killed and its replica promoted', async () => {
    const [a] = engines;
    const key = 'failover-key';
    const master = await cluster.masterIndexForKey(a.keysFor(key).lock);
    await cluster.kill(master);
    const started = Date.now();
    let taken = false;
    while (!taken && Date.now() - started < 30_000) {
      const attemptStarted = Date.now();
      // Fail-open grants locks without Redis while the slot moves: only a lock taken in Redis counts.
      const lock = await a.acquire(key, 5_000);
      expect(Date.now() - attemptStarted).toBeLessThan(2_000); // within the deadline while slots move
      taken = lock !== undefined && !lock.withoutRedis;
      await lock?.release();
      if (!taken) await sleep(200);
    }
    expect(taken).toBe(true);
    expect(await cluster.waitForFailover(master, 15_000)).not.toBe(master);
  });
});
