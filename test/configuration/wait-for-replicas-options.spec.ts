import Redis, { Cluster } from 'ioredis';
import { ConflictingLockOptionsError, DistributedLockConfigError, lockOptionsFromEnvironment } from '../../src';
import { resolveLockOptions } from '../../src/core/options/resolve-options';

describe('waitForReplicas', () => {
  it('defaults to 0 and accepts a replica count for a single Redis or Sentinel', () => {
    expect(resolveLockOptions({}).waitForReplicas).toBe(0);
    expect(resolveLockOptions({ waitForReplicas: 2 }).waitForReplicas).toBe(2);
    expect(
      resolveLockOptions({ sentinels: [{ host: 's', port: 26379 }], name: 'm', waitForReplicas: 1 }).waitForReplicas,
    ).toBe(1);
    expect(lockOptionsFromEnvironment({ DISTRIBUTED_LOCK_WAIT_FOR_REPLICAS: '1' }).waitForReplicas).toBe(1);
  });

  it.each([-1, 1.5, '1'])('refuses %j, naming the option', (value) => {
    expect(() => resolveLockOptions({ waitForReplicas: value as number })).toThrow(DistributedLockConfigError);
    expect(() => resolveLockOptions({ waitForReplicas: value as number })).toThrow(
      /^waitForReplicas must be a non-negative integer/,
    );
  });

  it('refuses it with a Cluster or a quorum, where no single server answers WAIT for the key', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], {
      lazyConnect: true,
      enableOfflineQueue: false,
      redisOptions: { autoResendUnfulfilledCommands: false },
    });
    expect(() => resolveLockOptions({ clusterNodes: [{ host: 'c', port: 7000 }], waitForReplicas: 1 })).toThrow(
      ConflictingLockOptionsError,
    );
    expect(() => resolveLockOptions({ nodes: ['redis://a', 'redis://b', 'redis://c'], waitForReplicas: 1 })).toThrow(
      'waitForReplicas and nodes cannot be combined',
    );
    expect(() => resolveLockOptions({ client: cluster, waitForReplicas: 1 })).toThrow(
      'waitForReplicas and client cannot be combined',
    );
    const client = new Redis({ lazyConnect: true, enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
    expect(resolveLockOptions({ client, waitForReplicas: 1 }).waitForReplicas).toBe(1);
  });
});
