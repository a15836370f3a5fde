import Redis from 'ioredis';
import { LockEngine } from '../../src/core';
import { RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

// The operations records run commands inside the lock scripts (HEXISTS for the pause flag, XADD for
// run history). An ACL user that may run the scripts but not those commands is a configuration
// Redis refuses: never an outage, never two replicas running one occurrence, never a kept lock.
describeWithOwnRedis('an ACL user without the commands of the operations records', () => {
  let redis: TestRedis;
  let admin: Redis;
  const engines: LockEngine[] = [];
  const engine = (username: string, logger: RecordingLogger | false = false) => {
    const created = new LockEngine({ host: redis.host, port: redis.port, username, password: 'Pass-1', logger });
    engines.push(created);
    return created;
  };

  beforeAll(async () => {
    redis = await startTestRedis();
    admin = redis.client();
    await admin.acl('SETUSER', 'no-hexists', 'on', '>Pass-1', '~*', '+@all', '-hexists');
    await admin.acl('SETUSER', 'no-xadd', 'on', '>Pass-1', '~*', '+@all', '-xadd');
  });
  afterAll(async () => {
    await Promise.all(engines.map((created) => created.close()));
    await redis.dispose();
  });

  it('refuses a job it cannot check for a pause, on every replica, and says which setting to fix', async () => {
    const logger = new RecordingLogger();
    const [a, b] = [engine('no-hexists', logger), engine('no-hexists')];
    const tick = Date.now() - 1_000;
    const results = await Promise.all(
      [a, b].map((locks) => locks.runJob('Reports.nightly', 'acl:nightly', 10_000, () => 'ran', { tick })),
    );
    expect(results).toEqual([undefined, undefined]); // no fail-open: refused, not unavailable
    expect(logger.messages('error')).toEqual([
      expect.stringMatching(/can't run this command.*the ACL user \(username, REDIS_USERNAME\) is allowed .*HEXISTS/),
    ]);
    expect(logger.messages('warn')).toEqual([]); // not an outage
  });

  it('still releases the lock when the history write is refused', async () => {
    const locks = engine('no-xadd');
    await expect(locks.runJob('Reports.nightly', 'acl:history', 10_000, () => 'ran')).resolves.toBe('ran');
    expect(await admin.exists('lock:{acl:history}')).toBe(0);
    expect(await admin.exists('lock:{acl:history}:runs')).toBe(0);
  });
});
