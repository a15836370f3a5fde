import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '../options/redis-target';

/** A target the library opens a connection to itself (not a client it is given, nor a quorum). */
export type ConnectionTarget = Extract<RedisTarget, { kind: 'standalone' | 'sentinel' | 'cluster' }>;

/**
 * The ioredis client for `target`, with `tuning` on every connection it opens (a Cluster's nodes
 * included) and `clusterTuning` on a Cluster itself: the one place a client is built per topology.
 */
export function createRedisClient(
  target: ConnectionTarget,
  tuning: RedisOptions,
  clusterTuning: ClusterOptions = {},
): Redis | Cluster {
  if (target.kind === 'cluster') {
    return new Cluster(target.nodes, { ...clusterTuning, redisOptions: { ...target.options, ...tuning } });
  }
  return new Redis({ ...target.options, ...tuning });
}
