import Redis, { Cluster, type ClusterOptions } from 'ioredis';
import {
  CAN_START_TOPOLOGIES,
  type IndependentMasters,
  type RedisAddress,
  startCluster,
  startIndependentMasters,
  startSentinelGroup,
  type TestCluster,
  type TestSentinelGroup,
} from '../support/redis-topologies';

const describeTopology = CAN_START_TOPOLOGIES ? describe : describe.skip;

/** Compare-and-delete on one key, the shape of the lock's release script. */
const DELETE_IF_EQUALS = `
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
  end
  return 0
`;

/**
 * With the defaults (16 redirections, 100 ms apart) a command sent while a master is down gives up
 * after about 1 s with "Too many Cluster redirections", before its replica is promoted (about 2-3 s
 * with cluster-node-timeout 1000); these spread the retries over about 8 s.
 */
const RIDES_OUT_FAILOVER: ClusterOptions = {
  maxRedirections: 64,
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  retryDelayOnMoved: 50,
};

/** Runs `fn` on a plain connection to one node, bypassing any cluster or sentinel routing. */
async function onNode<T>(address: RedisAddress, fn: (node: Redis) => Promise<T>): Promise<T> {
  const node = new Redis({ ...address, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  node.on('error', () => undefined);
  try {
    await node.connect();
    return await fn(node);
  } finally {
    node.disconnect();
  }
}

const roleOf = (address: RedisAddress) => onNode(address, async (node) => (await node.role()) as unknown[]);

describeTopology('startCluster with 3 masters', () => {
  let cluster: TestCluster;
  let client: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ masters: 3 });
    client = new Cluster([...cluster.nodes]);
    client.on('error', () => undefined);
  }, 30_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.dispose();
  });

  it('forms a cluster of three masters that serve every slot', async () => {
    expect(cluster.nodes).toHaveLength(3);
    expect(await cluster.masterIndexes()).toEqual([0, 1, 2]);
    expect(await client.cluster('INFO')).toContain('cluster_slots_assigned:16384');
  });

  it('stores keys of different slots on their own masters and reads them back', async () => {
    const keys = Array.from({ length: 30 }, (_, n) => `selfcheck:${n}`);
    await Promise.all(keys.map((key) => client.set(key, `value of ${key}`)));

    const owners = await Promise.all(keys.map((key) => cluster.masterIndexForKey(key)));
    expect(new Set(owners)).toEqual(new Set([0, 1, 2]));
    for (const [n, key] of keys.entries()) {
      expect(await client.get(key)).toBe(`value of ${key}`);
      expect(await onNode(cluster.nodes[owners[n]], (node) => node.get(key))).toBe(`value of ${key}`);
    }
  });

  it('runs a loaded one-key script by EVALSHA on the master of each key', async () => {
    const masters = client.nodes('master');
    expect(masters).toHaveLength(3);
    const shas = await Promise.all(masters.map((master) => master.script('LOAD', DELETE_IF_EQUALS)));
    const sha = String(shas[0]);
    expect(new Set(shas)).toEqual(new Set([sha]));

    const keys = ['script:a', 'script:b', 'script:c', 'script:d', 'script:e', 'script:f'];
    const owners = await Promise.all(keys.map((key) => cluster.masterIndexForKey(key)));
    expect(new Set(owners).size).toBeGreaterThan(1);
    for (const [n, key] of keys.entries()) {
      await client.set(key, 'token-1');
      expect(await client.evalsha(sha, 1, key, 'token-2')).toBe(0);
      expect(await onNode(cluster.nodes[owners[n]], (node) => node.get(key))).toBe('token-1');
      expect(await client.evalsha(sha, 1, key, 'token-1')).toBe(1);
      expect(await onNode(cluster.nodes[owners[n]], (node) => node.exists(key))).toBe(0);
    }
  });
});

describeTopology('startCluster with a replica per master', () => {
  const key = 'failover:key';
  let cluster: TestCluster;
  let client: Cluster;
  let victim: number;
  let promoted: number;

  beforeAll(async () => {
    cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
    client = new Cluster([...cluster.nodes], RIDES_OUT_FAILOVER);
    client.on('error', () => undefined);
  }, 30_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.dispose();
  });

  it('forms three masters, each with one replica', async () => {
    expect(cluster.nodes).toHaveLength(6);
    const masters = await cluster.masterIndexes();
    expect(masters).toHaveLength(3);
    const roles = await Promise.all(cluster.nodes.map(roleOf));
    expect(roles.filter((role) => role[0] === 'slave')).toHaveLength(3);
  });

  it('promotes the replica of a killed master, and a write sent meanwhile lands on it', async () => {
    await client.set(key, 'before');
    victim = await cluster.masterIndexForKey(key);
    const killedAt = Date.now();
    await cluster.kill(victim);

    const write = client.set(key, 'after');
    promoted = await cluster.waitForFailover(victim, 15_000);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(promoted).not.toBe(victim);
    expect(await write).toBe('OK');
    expect(await cluster.masterIndexForKey(key)).toBe(promoted);
    expect(await onNode(cluster.nodes[promoted], (node) => node.get(key))).toBe('after');
  }, 20_000);

  it('takes the restarted master back as a replica of the promoted one', async () => {
    await cluster.start(victim);
    await cluster.waitUntilOk(15_000);
    const role = await roleOf(cluster.nodes[victim]);
    expect(role.slice(0, 3)).toEqual(['slave', '127.0.0.1', cluster.nodes[promoted].port]);
    expect(await client.get(key)).toBe('after');
  }, 20_000);
});

describeTopology('startSentinelGroup with 2 replicas and 3 sentinels', () => {
  const key = 'sentinel:key';
  let group: TestSentinelGroup;
  let client: Redis;

  beforeAll(async () => {
    group = await startSentinelGroup({ replicas: 2, sentinels: 3, masterName: 'mymaster' });
    client = new Redis({ sentinels: [...group.sentinels], name: group.masterName });
    client.on('error', () => undefined);
  }, 30_000);

  afterAll(async () => {
    client?.disconnect();
    await group?.dispose();
  });

  it('names the first node as master and the others as its replicas', async () => {
    expect(group.sentinels).toHaveLength(3);
    expect(group.dataNodes).toHaveLength(3);
    expect(await group.master()).toEqual(group.dataNodes[0]);
    const roles = await Promise.all(group.dataNodes.map(roleOf));
    expect(roles.map((role) => role[0])).toEqual(['master', 'slave', 'slave']);
  });

  it('writes through the sentinels to the master they name', async () => {
    await client.set(key, 'before');
    expect(await onNode(await group.master(), (node) => node.get(key))).toBe('before');
  });

  it('writes to the promoted replica after the master is killed', async () => {
    const killed = await group.killMaster();
    const killedAt = Date.now();
    const promoted = await group.waitForFailover(15_000);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(promoted.port).not.toBe(killed.port);
    expect(group.dataNodes.slice(1).map((node) => node.port)).toContain(promoted.port);

    await client.set(key, 'after');
    expect(await onNode(promoted, (node) => node.get(key))).toBe('after');
    expect(await group.master()).toEqual(promoted);
  }, 20_000);
});

describeTopology('startIndependentMasters(5)', () => {
  let group: IndependentMasters;

  beforeAll(async () => {
    group = await startIndependentMasters(5);
  }, 30_000);

  afterAll(async () => {
    await group?.disposeAll();
  });

  it('starts five masters on five ports that all answer PING', async () => {
    expect(new Set(group.masters.map((master) => master.port)).size).toBe(5);
    expect(await Promise.all(group.masters.map((master) => master.client().ping()))).toEqual(Array(5).fill('PONG'));
    const roles = await Promise.all(group.masters.map((master) => master.client().role()));
    expect(roles.map((role) => (role as unknown[])[0])).toEqual(Array(5).fill('master'));
  });

  it('keeps their data apart', async () => {
    const [first, ...others] = group.masters;
    await first.client().set('independent:key', 'only here');
    expect(await first.client().get('independent:key')).toBe('only here');
    expect(await Promise.all(others.map((master) => master.client().exists('independent:key')))).toEqual([0, 0, 0, 0]);
  });
});
