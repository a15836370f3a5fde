import Redis, { type RedisOptions } from 'ioredis';
import { DistributedLockConfigError, DistributedLockModule, LockEngine } from '../../src';
import { createReplica } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

/**
 * A client passed in carries the user's own settings. With ioredis's defaults it queues commands
 * while disconnected and sends them again after a reconnect, so a lock taken minutes late would
 * stay in Redis for its whole TTL with nobody holding it: such a client is refused at bootstrap.
 */
describe('a client passed in', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const client = (options: RedisOptions = {}) => {
    const made = new Redis({ host: redis.host, port: redis.port, ...options });
    made.on('error', () => undefined);
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    for (const made of clients) made.disconnect();
    await redis.dispose();
  });

  it.each([
    ['ioredis defaults', {}],
    ['an offline queue', { autoResendUnfulfilledCommands: false }],
    ['commands resent after a reconnect', { enableOfflineQueue: false }],
  ] as [string, RedisOptions][])('is refused at bootstrap with %s, saying what to change', async (_case, options) => {
    const shared = client(options);
    await expect(createReplica([DistributedLockModule.forRoot({ client: shared })])).rejects.toThrow(
      DistributedLockConfigError,
    );
    expect(() => new LockEngine({ client: shared })).toThrow(
      /^client must be a client that never replays a lock command after a reconnect: create it with \{ enableOfflineQueue: false, autoResendUnfulfilledCommands: false \}/,
    );
    expect(shared.status).not.toBe('end'); // the user's client is left alone
  });

  it('locks through a client that neither queues nor resends', async () => {
    const shared = client({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
    const engine = new LockEngine({ client: shared, logger: false });
    try {
      expect(await engine.waitUntilConnected()).toBe(true);
      expect(await engine.acquireLock('shared-client', 5_000)).toBe(true);
      await engine.releaseLock('shared-client');
    } finally {
      await engine.close();
    }
  });
});
