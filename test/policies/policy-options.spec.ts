import { Injectable } from '@nestjs/common';
import { Cron, Interval } from '@nestjs/schedule';
import {
  DistributedLock,
  DistributedLockModule,
  type DistributedLockOptions,
  InvalidLockArgumentError,
  JobPolicyError,
} from '../../src';
import { createReplica } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

describe('job policy options', () => {
  describe('are checked where they are written', () => {
    const decorate = (options: object) => () =>
      DistributedLock({ key: 'k', ttlMs: 1_000, ...options } as Parameters<typeof DistributedLock>[0]);

    it.each([
      [{ catchUp: { windowMs: 0, runs: 'latest' } }, 'catchUp.windowMs'],
      [{ catchUp: { windowMs: 60_000, runs: 'some' } }, 'catchUp.runs'],
      [{ catchUp: { windowMs: 60_000, runs: 'all', max: 0 } }, 'catchUp.max'],
      [{ retry: { attempts: 1, backoffMs: 1_000 } }, 'retry.attempts'],
      [{ retry: { attempts: 3, backoffMs: -5 } }, 'retry.backoffMs'],
      [{ retry: { attempts: 3, backoffMs: 1_000, maxBackoffMs: 10 } }, 'retry.maxBackoffMs'],
      [{ pauseAfterFailures: 0 }, 'pauseAfterFailures'],
      [{ pauseAfterFailures: 2.5 }, 'pauseAfterFailures'],
    ])('%j is refused, naming %s', (options, option) => {
      expect(decorate(options)).toThrow(InvalidLockArgumentError);
      expect(decorate(options)).toThrow(new RegExp(`^${option.replace('.', '\\.')} must be`));
    });
  });

  describe('are refused at boot where they cannot keep their promise (real Redis)', () => {
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await startTestRedis();
    });
    afterAll(() => redis.dispose());

    const boot = (job: new (...args: never[]) => unknown, options: DistributedLockOptions = {}) =>
      createReplica([DistributedLockModule.forRoot({ url: redis.url, logger: false, ...options })], [job]);

    @Injectable()
    class IntervalJob {
      @Interval(60_000)
      @DistributedLock({ key: 'policies:interval', ttlMs: 1_000, catchUp: { windowMs: 60_000, runs: 'latest' } })
      tick(): void {}
    }

    @Injectable()
    class ComputedKeyJob {
      @Cron('0 * * * * *')
      @DistributedLock({ key: () => 'policies:computed', ttlMs: 1_000, retry: { attempts: 2, backoffMs: 100 } })
      tick(): void {}
    }

    @Injectable()
    class WideWindowJob {
      @Cron('0 0 * * * *')
      @DistributedLock({ key: 'policies:wide', ttlMs: 1_000, catchUp: { windowMs: 7 * 86_400_000, runs: 'all' } })
      tick(): void {}
    }

    it('an @Interval job: catch-up needs @Cron occurrences', async () => {
      const error = await boot(IntervalJob).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(JobPolicyError);
      expect((error as Error).message).toMatch(
        /^catchUp on IntervalJob\.tick cannot be used: it applies to @Cron jobs only/,
      );
    });

    @Injectable()
    class IntervalPausingJob {
      @Interval(60_000)
      @DistributedLock({ key: 'policies:interval-pausing', ttlMs: 1_000, pauseAfterFailures: 3 })
      tick(): void {}
    }

    it('an @Interval job: pauseAfterFailures counts @Cron occurrences', async () => {
      await expect(boot(IntervalPausingJob)).rejects.toThrow(
        /^pauseAfterFailures on IntervalPausingJob\.tick cannot be used: it applies to @Cron jobs only/,
      );
    });

    it('a lock name computed per call: one ledger needs a fixed key', async () => {
      await expect(boot(ComputedKeyJob)).rejects.toThrow(/^retry on ComputedKeyJob\.tick cannot be used: .*fixed key/);
    });

    it('operations: false', async () => {
      await expect(boot(WideWindowJob, { operations: false, stateRetentionMs: 30 * 86_400_000 })).rejects.toThrow(
        /catchUp on WideWindowJob\.tick cannot be used: operations is false/,
      );
    });

    it('a window longer than the state is kept, naming catchUp.windowMs and stateRetentionMs', async () => {
      const error = await boot(WideWindowJob).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(JobPolicyError);
      expect(error).toMatchObject({ job: 'WideWindowJob.tick', option: 'catchUp.windowMs' });
      expect((error as Error).message).toContain('stateRetentionMs 86400000');
    });

    it('a Redlock quorum, which keeps no occurrence ledger', async () => {
      const nodes = await Promise.all([startTestRedis(), startTestRedis(), startTestRedis()]);
      try {
        await expect(
          createReplica(
            [DistributedLockModule.forRoot({ nodes: nodes.map((node) => node.url), logger: false })],
            [WideWindowJob],
          ),
        ).rejects.toThrow(/keeps no occurrence ledger/);
      } finally {
        await Promise.all(nodes.map((node) => node.dispose()));
      }
    });
  });
});
