import type { Cluster, Redis } from 'ioredis';

/** True for an ioredis `Cluster` (it has a node list; a `Redis` does not). */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return typeof (client as Cluster).nodes === 'function';
}
