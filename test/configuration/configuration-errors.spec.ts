import Redis from 'ioredis';
import {
  ConflictingLockOptionsError,
  DistributedLockConfigError,
  lockOptionsFromEnvironment,
  type DistributedLockOptions,
} from '../../src';
import { resolveLockOptions } from '../../src/core/options/resolve-options';

function standaloneOptions(options: DistributedLockOptions): unknown {
  const { target } = resolveLockOptions(options);
  if (target.kind !== 'standalone') throw new Error(`expected a standalone target, got ${target.kind}`);
  return target.options;
}

describe('configuration from REDIS_* variables', () => {
  it('defaults to localhost:6379 db 0 with no prefix, fail-open, a 1 s decision deadline and no fencing', () => {
    const resolved = resolveLockOptions(lockOptionsFromEnvironment({}));
    expect(resolved.target).toMatchObject({ kind: 'standalone', options: { host: 'localhost', port: 6379, db: 0 } });
    expect(resolved).toMatchObject({ keyPrefix: '', failMode: 'open', acquireTimeoutMs: 1000, fencing: false });
  });

  it('reads every variable', () => {
    const options = lockOptionsFromEnvironment({
      REDIS_HOST: 'redis.internal',
      REDIS_PORT: '6380',
      REDIS_USERNAME: 'cron',
      REDIS_PASSWORD: 's3cret',
      REDIS_DB: '4',
      REDIS_TLS: 'true',
      REDIS_KEY_PREFIX: 'myapp:',
      DISTRIBUTED_LOCK_FAIL_MODE: 'closed',
      DISTRIBUTED_LOCK_ACQUIRE_TIMEOUT_MS: '250',
      DISTRIBUTED_LOCK_FENCING: 'on',
    });
    expect(options).toEqual({
      host: 'redis.internal',
      port: 6380,
      username: 'cron',
      password: 's3cret',
      db: 4,
      tls: true,
      keyPrefix: 'myapp:',
      failMode: 'closed',
      acquireTimeoutMs: 250,
      fencing: true,
    });
  });

  it('treats empty variables as unset', () => {
    expect(lockOptionsFromEnvironment({ REDIS_PASSWORD: '', REDIS_PORT: ' ', REDIS_KEY_PREFIX: '' })).toEqual({});
  });

  it('reads REDIS_SENTINELS, REDIS_CLUSTER_NODES and REDIS_NODES', () => {
    expect(
      lockOptionsFromEnvironment({
        REDIS_SENTINELS: 's1:26379, [::1]:26380',
        REDIS_SENTINEL_NAME: 'mymaster',
        REDIS_HOST: 'ignored',
      }),
    ).toEqual({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'mymaster',
    });
    expect(lockOptionsFromEnvironment({ REDIS_CLUSTER_NODES: 'c1:7000,c2:7001' })).toEqual({
      clusterNodes: [
        { host: 'c1', port: 7000 },
        { host: 'c2', port: 7001 },
      ],
    });
    expect(lockOptionsFromEnvironment({ REDIS_NODES: 'redis://a:1, redis://b:2,redis://c:3' })).toEqual({
      nodes: ['redis://a:1', 'redis://b:2', 'redis://c:3'],
    });
  });

  it('names the variable of a bad node list', () => {
    expect(() => lockOptionsFromEnvironment({ REDIS_CLUSTER_NODES: 'c1' })).toThrow(
      'REDIS_CLUSTER_NODES must be a non-empty list of { host, port }',
    );
    expect(() => lockOptionsFromEnvironment({ REDIS_NODES: 'redis://a,redis://b' })).toThrow(
      'REDIS_NODES must be an array of at least 3',
    );
  });

  it('lets REDIS_URL win over REDIS_HOST and REDIS_PORT', () => {
    const options = lockOptionsFromEnvironment({
      REDIS_URL: 'rediss://cron:p%40ss@cache.example:6390/2',
      REDIS_HOST: 'ignored',
      REDIS_PORT: '1',
    });
    expect(standaloneOptions(options)).toEqual({
      host: 'cache.example',
      port: 6390,
      db: 2,
      username: 'cron',
      password: 'p@ss',
      tls: {},
    });
  });

  it.each([
    [{ REDIS_PORT: 'abc' }, 'REDIS_PORT must be an integer from 1 to 65535, got "abc".'],
    [{ REDIS_PORT: '70000' }, 'REDIS_PORT must be an integer from 1 to 65535, got 70000.'],
    [{ REDIS_PORT: '0' }, 'REDIS_PORT must be an integer from 1 to 65535, got 0.'],
    [{ REDIS_DB: '-1' }, 'REDIS_DB must be a non-negative integer (a Redis logical database index), got -1.'],
    [{ REDIS_DB: '1.5' }, 'REDIS_DB must be a non-negative integer (a Redis logical database index), got "1.5".'],
    [{ REDIS_TLS: 'maybe' }, 'REDIS_TLS must be true, false or Node TLS options, got "maybe".'],
    [
      { DISTRIBUTED_LOCK_FAIL_MODE: 'sometimes' },
      'DISTRIBUTED_LOCK_FAIL_MODE must be "open" or "closed", got "sometimes".',
    ],
    [{ DISTRIBUTED_LOCK_FENCING: 'sometimes' }, 'DISTRIBUTED_LOCK_FENCING must be true or false, got "sometimes".'],
    [
      { DISTRIBUTED_LOCK_ACQUIRE_TIMEOUT_MS: '-5' },
      'DISTRIBUTED_LOCK_ACQUIRE_TIMEOUT_MS must be a positive integer number of milliseconds, at most 2147483647, got -5.',
    ],
  ])('rejects %j naming the variable and its value', (env, message) => {
    expect(() => lockOptionsFromEnvironment(env)).toThrow(DistributedLockConfigError);
    expect(() => lockOptionsFromEnvironment(env)).toThrow(message);
  });

  it.each(['localhost:6379', 'http://localhost:6379', 'redis://', 'redis://host:6379/db1', 'redis://host:notaport'])(
    'rejects the malformed REDIS_URL %s',
    (url) => {
      expect(() => lockOptionsFromEnvironment({ REDIS_URL: url })).toThrow(
        /^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/,
      );
    },
  );

  it('never puts the password of a malformed REDIS_URL in the error', () => {
    const failure = () => lockOptionsFromEnvironment({ REDIS_URL: 'http://admin:hunter2@cache:6379' });
    expect(failure).toThrow('got "http://admin:***@cache:6379"');
    expect(failure).not.toThrow(/hunter2/);
  });

  it('rejects REDIS_TLS=false with a rediss:// URL', () => {
    expect(() => lockOptionsFromEnvironment({ REDIS_URL: 'rediss://cache:6379', REDIS_TLS: 'false' })).toThrow(
      'REDIS_URL and REDIS_TLS cannot be combined',
    );
  });
});

describe('configuration from forRoot options', () => {
  const client = new Redis({ lazyConnect: true, enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
  afterAll(() => client.disconnect());

  it.each<[DistributedLockOptions, string]>([
    [{ port: -1 }, 'port must be an integer from 1 to 65535, got -1.'],
    [{ db: -1 }, 'db must be a non-negative integer (a Redis logical database index), got -1.'],
    [{ host: '' }, 'host must be a non-empty string, got "".'],
    [
      { acquireTimeoutMs: -1 },
      'acquireTimeoutMs must be a positive integer number of milliseconds, at most 2147483647, got -1.',
    ],
    [
      { acquireTimeoutMs: NaN },
      'acquireTimeoutMs must be a positive integer number of milliseconds, at most 2147483647, got NaN.',
    ],
    [{ acquireTimeoutMs: 2 ** 31 }, 'got 2147483648.'],
    [{ failMode: 'sometimes' as never }, 'failMode must be "open" or "closed", got "sometimes".'],
    [
      { keyPrefix: 42 as never },
      'keyPrefix must be a string whose first "{" is not followed at once by "}" (an empty hash tag would hash the lock and its state to different Redis Cluster slots), got 42.',
    ],
    [{ fencing: 'yes' as never }, 'fencing must be true or false, got "yes".'],
    [
      { logger: {} as never },
      'logger must be false or an object with warn() and error() methods, got an object (Object).',
    ],
    [{ client: {} as never }, 'client must be an ioredis Redis or Cluster client, got an object (Object).'],
    [
      { url: 'mysql://db:3306' },
      'url must be a redis:// or rediss:// URL such as redis://user:password@host:6379/0, got "mysql://db:3306".',
    ],
    [{ failmode: 'closed' } as never, 'options must be made of known options only'],
    [
      { clock: { now: () => 0 } as never },
      'clock must be an object with now(), setTimeout() and clearTimeout() methods, got an object (Object).',
    ],
  ])('rejects %j naming the option and its value', (options, message) => {
    expect(() => resolveLockOptions(options)).toThrow(message);
  });

  it.each<[DistributedLockOptions, string]>([
    [{ client, host: 'elsewhere' }, 'host and client cannot be combined'],
    [{ client, url: 'redis://x:1' }, 'url and client cannot be combined'],
    [{ url: 'redis://cache:6379', host: 'cache' }, 'url and host cannot be combined'],
    [{ url: 'redis://cache:6379', port: 6380 }, 'url and port cannot be combined'],
    [{ url: 'redis://cache:6379/1', db: 2 }, 'url and db cannot be combined'],
    [{ url: 'redis://:a@cache:6379', password: 'b' }, 'url and password cannot be combined'],
    [{ url: 'rediss://cache:6379', tls: false }, 'url and tls cannot be combined'],
  ])('rejects the contradictory options %j', (options, message) => {
    expect(() => resolveLockOptions(options)).toThrow(ConflictingLockOptionsError);
    expect(() => resolveLockOptions(options)).toThrow(message);
  });

  it.each<[DistributedLockOptions, string]>([
    [{ sentinels: [{ host: 's1', port: 26379 }] }, 'name must be the master name the sentinels monitor'],
    [
      { sentinels: [{ host: 's1', port: 0 }], name: 'mymaster' },
      'sentinels must be a non-empty list of { host, port }',
    ],
    [
      { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', host: 'cache' },
      'host and sentinels cannot be combined',
    ],
    [{ clusterNodes: [{ host: 'c1', port: 7000 }], db: 2 }, 'db must be 0 (or unset) with clusterNodes'],
    [{ clusterNodes: [] }, 'clusterNodes must be a non-empty list'],
    [
      { clusterNodes: [{ host: 'c1', port: 7000 }], sentinels: [{ host: 's1', port: 1 }], name: 'm' },
      'sentinels and clusterNodes cannot be combined',
    ],
    [{ nodes: ['redis://a:6379', 'redis://b:6379'] }, 'nodes must be an array of at least 3'],
    [{ nodes: ['redis://a:6379', 'redis://b:6379', 'http://c'] }, 'nodes[2].url must be a redis:// or rediss:// URL'],
    [{ nodes: ['redis://a', 'redis://b', 'redis://c'], password: 'x' }, 'nodes and password cannot be combined'],
    [{ client, nodes: ['redis://a', 'redis://b', 'redis://c'] }, 'nodes and client cannot be combined'],
  ])('rejects the topology options %j', (options, message) => {
    expect(() => resolveLockOptions(options)).toThrow(message);
  });

  it('resolves Sentinel, Cluster and quorum targets', () => {
    expect(
      resolveLockOptions({ sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', password: 'pw' }).target,
    ).toMatchObject({
      kind: 'sentinel',
      options: { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', password: 'pw', db: 0 },
    });
    expect(resolveLockOptions({ clusterNodes: [{ host: 'c1', port: 7000 }], password: 'pw' }).target).toMatchObject({
      kind: 'cluster',
      nodes: [{ host: 'c1', port: 7000 }],
      options: { password: 'pw' },
    });
    const quorum = resolveLockOptions({ nodes: ['redis://a:1', { host: 'b', port: 2 }, 'redis://:pw@c:3/1'] }).target;
    expect(quorum.kind === 'quorum' && quorum.nodes.map((node) => node.kind === 'standalone' && node.options)).toEqual([
      { host: 'a', port: 1, db: 0 },
      { host: 'b', port: 2, db: 0 },
      { host: 'c', port: 3, db: 1, password: 'pw' },
    ]);
  });

  it('fills what a URL leaves out from the separate options', () => {
    expect(standaloneOptions({ url: 'redis://cache:6379', password: 'pw', db: 3 })).toEqual({
      host: 'cache',
      port: 6379,
      db: 3,
      password: 'pw',
    });
  });

  it('reuses a given client and opens no connection of its own', () => {
    expect(resolveLockOptions({ client, keyPrefix: 'app:' }).target).toEqual({
      kind: 'client',
      client,
      label: 'localhost:6379/0 (shared client)',
    });
  });
});
