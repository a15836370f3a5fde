import { LockEngine, type LockLogger, lockOptionsFromEnvironment } from '../../src/core';
import { startTestRedis, type TestRedis } from '../support/redis-server';

/** A logger that records each line with its level; `levels` are the methods it has. */
function recordingLogger(levels: string[]): LockLogger & { lines: string[] } {
  const lines: string[] = [];
  const logger = { lines, warn: () => undefined, error: () => undefined } as LockLogger & { lines: string[] };
  for (const level of levels)
    (logger as unknown as Record<string, unknown>)[level] = (message: string) => lines.push(`${level}: ${message}`);
  return logger;
}

describe('the line a skipped job logs', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  async function skipOnce(logger: LockLogger, skipLogLevel?: 'verbose' | 'debug' | 'log' | false): Promise<void> {
    const holder = new LockEngine({ url: redis.url, logger: false });
    const loser = new LockEngine({ url: redis.url, logger, skipLogLevel });
    await holder.acquireLock('report', 10_000);
    await loser.runJob('Reports.nightly', 'report', 10_000, () => 'ran');
    await holder.releaseLock('report');
    await Promise.all([holder.close(), loser.close()]);
  }

  it('is verbose by default', async () => {
    const logger = recordingLogger(['log', 'verbose', 'debug']);
    await skipOnce(logger);
    expect(logger.lines).toEqual(['verbose: Skipped Reports.nightly: lock "report" is held elsewhere.']);
  });

  it('falls back to debug on a logger without verbose (console)', async () => {
    const logger = recordingLogger(['log', 'debug']);
    await skipOnce(logger);
    expect(logger.lines).toEqual(['debug: Skipped Reports.nightly: lock "report" is held elsewhere.']);
  });

  it('takes its level from skipLogLevel, or is not logged with false', async () => {
    const atLog = recordingLogger(['log', 'verbose', 'debug']);
    await skipOnce(atLog, 'log');
    expect(atLog.lines).toEqual(['log: Skipped Reports.nightly: lock "report" is held elsewhere.']);
    const silent = recordingLogger(['log', 'verbose', 'debug']);
    await skipOnce(silent, false);
    expect(silent.lines).toEqual([]);
  });

  it('reads DISTRIBUTED_LOCK_SKIP_LOG_LEVEL, and names it when its value is wrong', () => {
    expect(lockOptionsFromEnvironment({ DISTRIBUTED_LOCK_SKIP_LOG_LEVEL: 'off' }).skipLogLevel).toBe(false);
    expect(lockOptionsFromEnvironment({ DISTRIBUTED_LOCK_SKIP_LOG_LEVEL: 'Debug' }).skipLogLevel).toBe('debug');
    expect(() => lockOptionsFromEnvironment({ DISTRIBUTED_LOCK_SKIP_LOG_LEVEL: 'loud' })).toThrow(
      'DISTRIBUTED_LOCK_SKIP_LOG_LEVEL must be "verbose", "debug", "log" or false, got "loud"',
    );
  });
});
