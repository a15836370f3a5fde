import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import {
  DISTRIBUTED_LOCK_CONFIG_NAMESPACE,
  DistributedLockConfigError,
  DistributedLockModule,
  type DistributedLockAsyncOptions,
  DistributedLockService,
  distributedLockConfig,
  type DistributedLockOptions,
  type DistributedLockOptionsFactory,
} from '../../src';
import { ReportJobs } from '../fixtures/report-jobs';
import { createReplica } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

describe('DistributedLockModule configuration', () => {
  let redis: TestRedis;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });
  beforeEach(() => {
    for (const name of Object.keys(process.env)) {
      if (name.startsWith('REDIS_') || name.startsWith('DISTRIBUTED_LOCK_')) delete process.env[name];
    }
  });
  afterEach(() => {
    process.env = { ...savedEnv };
  });

  async function heldKeyAfterAcquire(imports: Parameters<typeof createReplica>[0], db = 0): Promise<string[]> {
    const app = await createReplica(imports);
    try {
      const locks = app.get(DistributedLockService);
      expect(await locks.acquireLock('probe', 10_000)).toBe(true);
      const keys = await redis.client(db).keys('*probe}');
      await locks.releaseLock('probe'); // closing leaves a plain lock to its TTL
      return keys;
    } finally {
      await app.close();
    }
  }

  it('reads REDIS_* from process.env when imported bare without ConfigModule', async () => {
    process.env.REDIS_HOST = redis.host;
    process.env.REDIS_PORT = String(redis.port);
    process.env.REDIS_DB = '2';
    process.env.REDIS_KEY_PREFIX = 'bare:';
    expect(await heldKeyAfterAcquire([DistributedLockModule], 2)).toEqual(['bare:lock:{probe}']);
  });

  it('reads the distributedLock namespace of @nestjs/config when imported bare', async () => {
    process.env.REDIS_URL = `${redis.url}/1`;
    process.env.REDIS_KEY_PREFIX = 'config:';
    const config = ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] });
    expect(await heldKeyAfterAcquire([config, DistributedLockModule], 1)).toEqual(['config:lock:{probe}']);
    expect(distributedLockConfig.KEY).toBe(`CONFIGURATION(${DISTRIBUTED_LOCK_CONFIG_NAMESPACE})`);
  });

  it('reads the distributedLock namespace through forRootAsync(distributedLockConfig.asProvider())', async () => {
    process.env.REDIS_URL = redis.url;
    process.env.REDIS_KEY_PREFIX = 'provider:';
    const module = DistributedLockModule.forRootAsync(distributedLockConfig.asProvider());
    expect(await heldKeyAfterAcquire([ConfigModule.forRoot(), module])).toEqual(['provider:lock:{probe}']);
  });

  it('exposes the parsed settings through ConfigService', async () => {
    process.env.REDIS_PORT = '6390';
    process.env.DISTRIBUTED_LOCK_FAIL_MODE = 'closed';
    const app = await createReplica([ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] })]);
    expect(app.get(ConfigService).get(DISTRIBUTED_LOCK_CONFIG_NAMESPACE)).toEqual({ port: 6390, failMode: 'closed' });
    await app.close();
  });

  it.each([
    ['without ConfigModule', () => [DistributedLockModule]],
    [
      'with ConfigModule',
      () => [ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] }), DistributedLockModule],
    ],
  ])('fails at bootstrap on REDIS_PORT=abc %s, naming the variable', async (_case, imports) => {
    process.env.REDIS_PORT = 'abc';
    await expect(createReplica(imports())).rejects.toThrow('REDIS_PORT must be an integer from 1 to 65535, got "abc".');
  });

  it('fails at bootstrap on a bad forRoot option, naming it', async () => {
    await expect(
      createReplica([DistributedLockModule.forRoot({ url: redis.url, acquireTimeoutMs: -1 })]),
    ).rejects.toThrow(
      'acquireTimeoutMs must be a positive integer number of milliseconds, at most 2147483647, got -1.',
    );
  });

  it('takes forRoot options over the environment', async () => {
    process.env.REDIS_PORT = '1';
    expect(await heldKeyAfterAcquire([DistributedLockModule.forRoot({ url: redis.url, keyPrefix: 'root:' })])).toEqual([
      'root:lock:{probe}',
    ]);
  });

  it('builds options with forRootAsync from injected providers', async () => {
    process.env.CUSTOM_REDIS = redis.url;
    const module = DistributedLockModule.forRootAsync({
      imports: [ConfigModule.forRoot()],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({ url: config.getOrThrow<string>('CUSTOM_REDIS'), keyPrefix: 'async:' }),
    });
    expect(await heldKeyAfterAcquire([module])).toEqual(['async:lock:{probe}']);
  });

  it('fails at bootstrap when forRootAsync produces bad options', async () => {
    const module = DistributedLockModule.forRootAsync({ useFactory: async () => ({ url: 'redis://cache:notaport' }) });
    await expect(createReplica([module])).rejects.toThrow(/^url must be a redis:\/\/ or rediss:\/\/ URL/);
  });

  it('builds options with forRootAsync useClass, injecting the class its dependencies', async () => {
    process.env.CUSTOM_REDIS = redis.url;
    @Injectable()
    class LockOptions implements DistributedLockOptionsFactory {
      constructor(private readonly config: ConfigService) {}
      createDistributedLockOptions(): DistributedLockOptions {
        return { url: this.config.getOrThrow<string>('CUSTOM_REDIS'), keyPrefix: 'class:' };
      }
    }
    const module = DistributedLockModule.forRootAsync({ imports: [ConfigModule.forRoot()], useClass: LockOptions });
    expect(await heldKeyAfterAcquire([module])).toEqual(['class:lock:{probe}']);
  });

  it('builds options with forRootAsync useExisting from the instance an imported module exports', async () => {
    let created = 0;
    @Injectable()
    class SharedLockOptions implements DistributedLockOptionsFactory {
      constructor() {
        created += 1;
      }
      async createDistributedLockOptions(): Promise<DistributedLockOptions> {
        return { url: redis.url, keyPrefix: 'existing:' };
      }
    }
    @Module({ providers: [SharedLockOptions], exports: [SharedLockOptions] })
    class LockOptionsModule {}

    const module = DistributedLockModule.forRootAsync({ imports: [LockOptionsModule], useExisting: SharedLockOptions });
    expect(await heldKeyAfterAcquire([LockOptionsModule, module])).toEqual(['existing:lock:{probe}']);
    expect(created).toBe(1);
  });

  class EmptyOptions implements DistributedLockOptionsFactory {
    createDistributedLockOptions(): DistributedLockOptions {
      return {};
    }
  }

  it.each<[string, DistributedLockAsyncOptions, string]>([
    ['none of them', { imports: [] }, 'undefined'],
    ['useFactory and useClass', { useFactory: () => ({}), useClass: EmptyOptions }, '"useFactory and useClass"'],
    ['useClass and useExisting', { useClass: EmptyOptions, useExisting: EmptyOptions }, '"useClass and useExisting"'],
  ])('refuses forRootAsync given %s, naming the options', (_case, options, got) => {
    const call = () => DistributedLockModule.forRootAsync(options);
    expect(call).toThrow(DistributedLockConfigError);
    expect(call).toThrow(
      `forRootAsync options must be given exactly one of useFactory, useClass and useExisting, got ${got}.`,
    );
  });

  it('is global: a feature module injects the service without importing the module', async () => {
    @Injectable()
    class FeatureService {
      constructor(readonly locks: DistributedLockService) {}
    }
    @Module({ providers: [FeatureService], exports: [FeatureService] })
    class FeatureModule {}

    const app = await createReplica([DistributedLockModule.forRoot({ url: redis.url }), FeatureModule]);
    expect(app.get(FeatureService).locks).toBe(app.get(DistributedLockService));
    await app.close();
  });

  it('fails at bootstrap, saying what to import, when a decorated provider has no DistributedLockModule', async () => {
    await expect(createReplica([], [ReportJobs])).rejects.toThrow(/import DistributedLockModule in your root module/);
  });
});
