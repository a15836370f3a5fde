import { Injectable } from '@nestjs/common';
import { Cron, CronExpression, ScheduleModule } from '@nestjs/schedule';
import { DistributedLock, DistributedLockModule } from '../../src';
import { DistributedLockTestingModule } from '../../src/testing';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

@Injectable()
class NightlyJobs {
  @Cron(CronExpression.EVERY_DAY_AT_2AM)
  @DistributedLock('nightly', 60_000)
  report(): void {}
}

// @Cron without ScheduleModule fires nothing, and nothing else says so: the module does, at startup.
describe('a @DistributedLock @Cron job in an app without ScheduleModule', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  const boot = async (withSchedule: boolean) => {
    const logger = new RecordingLogger();
    const locks = DistributedLockModule.forRoot({ url: redis.url, logger, keyPrefix: `no-schedule-${withSchedule}:` });
    const app = await createReplica(withSchedule ? [ScheduleModule.forRoot(), locks] : [locks], [NightlyJobs]);
    await app.init();
    await app.close();
    return logger.messages('warn');
  };

  it('is named in a warning at startup', async () => {
    expect(await boot(false)).toEqual([
      expect.stringMatching(/^NightlyJobs\.report has @Cron .* does not import ScheduleModule/),
    ]);
  });

  it('is not warned about when the app imports ScheduleModule', async () => {
    expect(await boot(true)).toEqual([]);
  });

  it('is not warned about under the testing module, where a test calls the methods itself', async () => {
    const logger = new RecordingLogger();
    const app = await createReplica([DistributedLockTestingModule.forRoot({ logger })], [NightlyJobs]);
    await app.init();
    await app.close();
    expect(logger.messages('warn')).toEqual([]);
  });
});
