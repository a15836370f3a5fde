import { Injectable } from '@nestjs/common';
import { DistributedLock, DistributedLockModule, DistributedLockService } from '../../src';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

let release: () => void = () => undefined;

@Injectable()
class ExportJobs {
  @DistributedLock('exports', 10_000)
  nightly(): Promise<string> {
    return new Promise((resolve) => (release = () => resolve('nightly')));
  }
}

@Injectable()
class CleanupJobs {
  @DistributedLock('exports', 10_000)
  purge(): string {
    return 'purged';
  }
}

@Injectable()
class SharingJobs {
  @DistributedLock({ key: 'sharing', ttlMs: 10_000, sharedKey: true })
  first(): void {}

  @DistributedLock({ key: 'sharing', ttlMs: 10_000, sharedKey: true })
  second(): void {}
}

// Two jobs under one fixed key never run at once: the module says so at startup, unless meant.
describe('jobs sharing one fixed lock name in one application', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  const boot = async (providers: (new () => object)[], logger: RecordingLogger, replicaName = 'r1') => {
    const locks = DistributedLockModule.forRoot({ url: redis.url, logger, skipLogLevel: 'log', replicaName });
    const app = await createReplica([locks], providers);
    await app.init();
    return app;
  };

  it('are named in a warning at startup', async () => {
    const logger = new RecordingLogger();
    const app = await boot([ExportJobs, CleanupJobs], logger);
    await app.close();
    expect(logger.messages('warn')).toEqual([
      expect.stringMatching(
        /^ExportJobs\.nightly and CleanupJobs\.purge take the same lock "exports".*sharedKey: true/,
      ),
    ]);
  });

  it('are not warned about when each of them shares the key deliberately', async () => {
    const logger = new RecordingLogger();
    const app = await boot([SharingJobs], logger);
    await app.close();
    expect(logger.messages('warn')).toEqual([]);
  });

  it('say "held by this replica" when one skips because another job of the same replica holds the lock', async () => {
    const [here, there] = [new RecordingLogger(), new RecordingLogger()];
    const [a, b] = [
      await boot([ExportJobs, CleanupJobs], here, 'a'),
      await boot([ExportJobs, CleanupJobs], there, 'b'),
    ];
    const nightly = a.get(ExportJobs).nightly();
    const locksOfA = a.get(DistributedLockService);
    for (let waited = 0; !locksOfA.holdsLock('exports') && waited < 5_000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10)); // until the nightly run holds the lock in Redis
    }
    expect(await a.get(CleanupJobs).purge()).toBeUndefined();
    expect(await b.get(CleanupJobs).purge()).toBeUndefined();
    release();
    expect(await nightly).toBe('nightly');
    expect(here.messages('log')).toContain(
      'Skipped CleanupJobs.purge: lock "exports" is held by this replica (another run of the job, or another job sharing the lock name).',
    );
    expect(there.messages('log')).toContain('Skipped CleanupJobs.purge: lock "exports" is held elsewhere.');
    await Promise.all([a.close(), b.close()]);
  });
});
