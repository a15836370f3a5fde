import { Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import {
  DistributedLock,
  DistributedLockConfigError,
  DistributedLockModule,
  type DistributedLockOptions,
  LockEngine,
} from '../../src';
import { createReplica, RecordingLogger } from '../support/create-replica';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

@Injectable()
class GuardedJob {
  runs = 0;

  @DistributedLock('refused:job', 5_000)
  async run(): Promise<void> {
    this.runs++;
  }
}

/** Boots an app with these options (fail-open, the default); resolves its bootstrap error, if any. */
async function bootFailure(options: DistributedLockOptions): Promise<unknown> {
  try {
    const app = await createReplica(
      [DistributedLockModule.forRoot({ acquireTimeoutMs: 500, ...options })],
      [GuardedJob],
    );
    await app.close();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** An error reply is not an outage: settings Redis refuses stop the app, they never run it unlocked. */
describeWithOwnRedis('settings Redis refuses, at bootstrap', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis(['--requirepass', 'Right-Pass-1', '--databases', '16']);
    const admin = new Redis({ port: redis.port, host: redis.host, password: 'Right-Pass-1' });
    await admin.acl('SETUSER', 'no-scripts', 'on', '>Locker-Pass-2', '~*', '+@all', '-eval', '-evalsha', '-script');
    admin.disconnect();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('fails on a wrong password, naming the setting and never the password', async () => {
    const error = await bootFailure({ host: redis.host, port: redis.port, password: 'Wrong-Pass-9' });
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as Error).message).toMatch(
      /^password \(REDIS_PASSWORD\) or username \(REDIS_USERNAME\) must be credentials Redis accepts: .*WRONGPASS/,
    );
    expect((error as Error).message).not.toContain('Wrong-Pass-9');
  });

  it('names the URL, not REDIS_PASSWORD, when the wrong password is inside the URL', async () => {
    const error = await bootFailure({ url: `redis://:Wrong-Pass-9@${redis.host}:${redis.port}` });
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as Error).message).toMatch(
      /^the credentials in url \(REDIS_URL\) must be credentials Redis accepts: .*WRONGPASS/,
    );
    expect((error as Error).message).not.toContain('Wrong-Pass-9');
  });

  it('names the URL, not REDIS_DB, when the database it lacks is the one in the URL', async () => {
    const error = await bootFailure({ url: `redis://:Right-Pass-1@${redis.host}:${redis.port}/16` });
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as Error).message).toMatch(
      /^the database in url \(REDIS_URL\) must be a database index that Redis has/,
    );
  });

  it('fails on a database the server does not have, instead of locking in database 0', async () => {
    const error = await bootFailure({ host: redis.host, port: redis.port, password: 'Right-Pass-1', db: 16 });
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as Error).message).toMatch(/^db \(REDIS_DB\) must be a database index that Redis has/);
    const admin = new Redis({ port: redis.port, host: redis.host, password: 'Right-Pass-1' });
    try {
      expect(await admin.dbsize()).toBe(0); // nothing went to database 0 instead
    } finally {
      admin.disconnect();
    }
  });

  it('fails for an ACL user that may not run the lock scripts', async () => {
    const error = await bootFailure({
      host: redis.host,
      port: redis.port,
      username: 'no-scripts',
      password: 'Locker-Pass-2',
    });
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as Error).message).toMatch(/^username \(REDIS_USERNAME\) must be an ACL user allowed .*NOPERM/);
  });

  it('boots with the right settings', async () => {
    expect(await bootFailure({ host: redis.host, port: redis.port, password: 'Right-Pass-1', db: 15 })).toBeUndefined();
  });
});

describeWithOwnRedis('settings Redis refuses after bootstrap, and keys of another type', () => {
  let redis: TestRedis;
  let observer: Redis;
  beforeAll(async () => {
    redis = await startTestRedis(['--requirepass', 'Right-Pass-1']);
    observer = new Redis({ port: redis.port, host: redis.host, password: 'Right-Pass-1' });
  });
  afterAll(async () => {
    observer.disconnect();
    await redis.dispose();
  });

  it('a rotated password: no job runs unlocked, and an error (not an outage warning) is logged once', async () => {
    const logger = new RecordingLogger();
    const app = await createReplica(
      [DistributedLockModule.forRoot({ host: redis.host, port: redis.port, password: 'Right-Pass-1', logger })],
      [GuardedJob],
    );
    try {
      const job = app.get(GuardedJob);
      await job.run();
      expect(job.runs).toBe(1);

      await observer.config('SET', 'requirepass', 'Rotated-Pass-3');
      await observer.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes'); // the app reconnects with the old password
      await sleep(500);
      for (let i = 0; i < 5; i++) await job.run();

      expect(job.runs).toBe(1); // fail-open did not run them: Redis is up, another replica may hold the lock
      expect(logger.messages('error').filter((line) => line.includes('WRONGPASS'))).toHaveLength(1);
      expect(logger.messages('warn').filter((line) => line.includes('unavailable'))).toEqual([]);
      expect(logger.messages('error').join('\n')).not.toContain('Right-Pass-1');
    } finally {
      await observer.config('SET', 'requirepass', 'Right-Pass-1');
      await app.close();
    }
  });

  it.each([
    ['lock key', 'lock:{typed}', () => observer.hset('lock:{typed}', 'field', 'value')],
    ['state key', 'lock:{typed}:state', () => observer.set('lock:{typed}:state', 'not a hash')],
  ])(
    'a %s holding another type: that lock is refused and logged by name, others still lock',
    async (_case, key, write) => {
      const logger = new RecordingLogger();
      const engine = new LockEngine({
        host: redis.host,
        port: redis.port,
        password: 'Right-Pass-1',
        fencing: true,
        logger,
      });
      try {
        await write();
        expect(await engine.acquireLock('typed', 5_000)).toBe(false);
        expect(await engine.acquireLock('typed', 5_000)).toBe(false);
        expect(await engine.withLock('typed', 5_000, () => 'ran')).toEqual({ ran: false, reason: 'refused' });
        const errors = logger.messages('error').filter((line) => line.includes('WRONGTYPE'));
        expect(errors).toHaveLength(1);
        expect(errors[0]).toContain('lock:{typed}');
        expect(await engine.acquireLock('untyped', 5_000)).toBe(true);
        await engine.releaseLock('untyped');
        expect(logger.messages('warn')).toEqual([]);
      } finally {
        await observer.del(key);
        await engine.close();
      }
    },
  );

  it('a busy server (BUSY) is an outage: the fail mode decides', async () => {
    const logger = new RecordingLogger();
    const engine = new LockEngine({ host: redis.host, port: redis.port, password: 'Right-Pass-1', logger });
    const busy = new Redis({ port: redis.port, host: redis.host, password: 'Right-Pass-1' });
    try {
      await observer.config('SET', 'busy-reply-threshold', '100');
      await engine.waitUntilConnected();
      const script = busy
        .eval("local s = tonumber(redis.call('TIME')[1]); while tonumber(redis.call('TIME')[1]) < s + 3 do end", 0)
        .catch(() => undefined);
      await sleep(300);
      const lock = await engine.acquire('busy', 5_000);
      expect(lock?.withoutRedis).toBe(true); // fail-open ran without Redis
      expect(logger.messages('warn').some((line) => line.includes('BUSY'))).toBe(true);
      await observer.script('KILL').catch(() => undefined);
      await script;
    } finally {
      busy.disconnect();
      await engine.close();
    }
  });
});
