import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { LockEngine } from '../../src/core';
import { FleetInspector } from '../../src/core/fleet/fleet-inspector';
import { CAN_START_TOPOLOGIES, startCluster, type TestCluster } from '../support/redis-topologies';
import { compileCli, runCli } from './cli-process';

const describeCluster = CAN_START_TOPOLOGIES ? describe : describe.skip;

describeCluster('seeing the fleet on a Redis Cluster', () => {
  jest.setTimeout(60_000);
  let cluster: TestCluster;
  let client: Cluster;
  let engine: LockEngine;
  let buildDir: string;
  const names = Array.from({ length: 12 }, (_, i) => `job-${i}`);

  beforeAll(async () => {
    buildDir = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
    cluster = await startCluster({ masters: 3 });
    client = new Cluster([...cluster.nodes]);
    engine = new LockEngine({
      clusterNodes: [...cluster.nodes],
      keyPrefix: 'app:',
      replicaName: 'pod-1',
      logger: false,
    });
    expect(await engine.waitUntilConnected(5_000)).toBe(true);
    for (const name of names) expect(await engine.acquireLock(name, 60_000)).toBe(true);
  });
  afterAll(async () => {
    await engine?.close();
    client?.disconnect();
    await cluster?.dispose();
    rmSync(buildDir, { recursive: true, force: true });
  });

  it('lists the locks held on every master', async () => {
    const masters = new Set(
      await Promise.all(names.map((name) => cluster.masterIndexForKey(engine.keysFor(name).lock))),
    );
    expect(masters.size).toBeGreaterThan(1);

    const locks = await new FleetInspector(client, 'app:').locks();

    expect(locks.map((lock) => lock.name)).toEqual([...names].sort());
    expect(new Set(locks.map((lock) => lock.replica))).toEqual(new Set(['pod-1']));
  });

  it('runs the CLI against it from REDIS_CLUSTER_NODES', async () => {
    const run = await runCli(compileCli(buildDir), ['status', '--json'], {
      REDIS_CLUSTER_NODES: cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','),
      REDIS_KEY_PREFIX: 'app:',
    });
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout).locks).toHaveLength(names.length);
  });
});
