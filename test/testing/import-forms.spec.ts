import { Injectable, Module, type DynamicModule, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  DistributedLock,
  DistributedLockError,
  DistributedLockModule,
  type DistributedLockOptions,
  type DistributedLockOptionsFactory,
} from '../../src';
import { DistributedLockTestingModule, InMemoryLockStore, withInMemoryLocks } from '../../src/testing';
import { startTestRedis, type TestRedis } from '../support/redis-server';

@Injectable()
class ReportJobs {
  @DistributedLock('reports', 10_000)
  build(): string {
    return 'built';
  }
}

/** An options factory as an app writes one, pointing at the Redis of the test (which must stay untouched). */
@Injectable()
class LockOptions implements DistributedLockOptionsFactory {
  static url = '';
  createDistributedLockOptions(): DistributedLockOptions {
    return { url: LockOptions.url };
  }
}

@Module({ providers: [LockOptions], exports: [LockOptions] })
class OptionsModule {}

/** An application module that imports the real module in one of the ways apps do. */
function appModule(locks: DynamicModule | typeof DistributedLockModule) {
  @Module({ imports: [locks], providers: [ReportJobs] })
  class AppModule {}
  return AppModule;
}

describe('withInMemoryLocks replaces DistributedLockModule however the app imports it', () => {
  let redis: TestRedis;
  let app: INestApplicationContext | undefined;
  beforeAll(async () => {
    redis = await startTestRedis();
    LockOptions.url = redis.url;
    process.env.REDIS_URL = redis.url; // what a bare import would read
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  afterAll(async () => {
    delete process.env.REDIS_URL;
    await redis.dispose();
  });

  const forms: [string, () => DynamicModule | typeof DistributedLockModule][] = [
    ['a bare import', () => DistributedLockModule],
    ['forRoot', () => DistributedLockModule.forRoot({ url: redis.url })],
    [
      'forRootAsync with useFactory',
      () =>
        DistributedLockModule.forRootAsync({
          useFactory: () => {
            throw new Error('the options factory of the app must not be called in a test over the in-memory store');
          },
        }),
    ],
    ['forRootAsync with useClass', () => DistributedLockModule.forRootAsync({ useClass: LockOptions })],
    [
      'forRootAsync with useExisting',
      () => DistributedLockModule.forRootAsync({ imports: [OptionsModule], useExisting: LockOptions }),
    ],
  ];

  it.each(forms)('%s: the job runs over the store, and Redis sees nothing', async (_form, locks) => {
    const store = new InMemoryLockStore();
    const moduleRef = await withInMemoryLocks(Test.createTestingModule({ imports: [appModule(locks())] }), {
      store,
    }).compile();
    app = await moduleRef.init();
    expect(await app.get(ReportJobs).build()).toBe('built');
    expect(store.runs('ReportJobs.build')).toHaveLength(1);
    expect(await redis.client().dbsize()).toBe(0); // no lock, no job declaration
  });

  it('fails the boot, loudly, when the testing module is added beside a real module instead of replacing it', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [appModule(DistributedLockModule.forRoot({ url: redis.url })), DistributedLockTestingModule.forRoot()],
    }).compile();
    const booting = moduleRef.init();
    await expect(booting).rejects.toThrow(DistributedLockError);
    await expect(booting).rejects.toThrow(
      /imports DistributedLockTestingModule and also boots DistributedLockModule against Redis.*withInMemoryLocks/,
    );
    expect(await redis.client().dbsize()).toBe(0);
  });
});
