import type { Cluster, Redis } from 'ioredis';
import { DistributedLockError } from '../errors';
import { isCluster } from '../redis/is-cluster';

/** Keys read per SCAN call, on each master. */
const SCAN_COUNT = 1000;

/** Every key matching `pattern` of `type`, by SCAN on each master (a Cluster spreads keys over them). */
export async function scanKeys(client: Redis | Cluster, pattern: string, type: string): Promise<string[]> {
  const nodes = isCluster(client) ? await mastersOf(client) : [client];
  const found = new Set<string>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', type);
      for (const key of keys) found.add(key);
      cursor = next;
    } while (cursor !== '0');
  }
  return [...found];
}

/** Every field and value of the hash `key`, read by HSCAN pages. */
export async function hashEntries(client: Redis | Cluster, key: string): Promise<[string, string][]> {
  const entries: [string, string][] = [];
  let cursor = '0';
  do {
    const [next, page] = await client.hscan(key, cursor, 'COUNT', SCAN_COUNT);
    for (let i = 0; i + 1 < page.length; i += 2) entries.push([page[i], page[i + 1]]);
    cursor = next;
  } while (cursor !== '0');
  return entries;
}

/** The masters of a Cluster; a client that has not connected yet knows none until its first command. */
async function mastersOf(cluster: Cluster): Promise<Redis[]> {
  if (cluster.nodes('master').length === 0) await cluster.ping();
  const masters = cluster.nodes('master');
  if (masters.length === 0) throw new DistributedLockError('The Redis Cluster client knows no master to scan.');
  return masters;
}
