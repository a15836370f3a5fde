import { LockEngine } from '../../src/core';
import { RecordingLogger } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A run longer than a TTL nothing extends lets another replica start the job: said once per job.
describe('a job whose run outlives a lock it does not extend', () => {
  let redis: TestRedis;
  let locks: LockEngine;
  let logger: RecordingLogger;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  beforeEach(() => {
    logger = new RecordingLogger();
    locks = new LockEngine({ url: redis.url, logger, keyPrefix: `ttl-${Date.now()}:` });
  });
  afterEach(async () => {
    await locks.close();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  const slowRun = (job: string, options: { autoExtend?: boolean } = {}) =>
    locks.runJob(job, job, 300, () => sleep(900), options);

  it('is named in a warning, once per job, with its TTL and what to change', async () => {
    await slowRun('Reports.slow', { autoExtend: false });
    await slowRun('Reports.slow', { autoExtend: false });
    expect(logger.messages('warn')).toEqual([
      expect.stringMatching(
        /^Reports\.slow ran longer than its lock's TTL \(ttlMs 300\) with autoExtend: false.*Raise ttlMs/,
      ),
    ]);
    await slowRun('Reports.other', { autoExtend: false });
    expect(logger.messages('warn')).toHaveLength(2);
  });

  it('is not warned about when its lock is extended while it runs', async () => {
    await slowRun('Reports.extended');
    expect(logger.messages('warn')).toEqual([]);
  });
});
