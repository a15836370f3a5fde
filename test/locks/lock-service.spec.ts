import type { INestApplicationContext } from '@nestjs/common';
import Redis from 'ioredis';
import {
  DistributedLockConfigError,
  DistributedLockModule,
  DistributedLockService,
  type DistributedLockOptions,
} from '../../src';
import { createReplica } from '../support/create-replica';
import { recordCommands } from '../support/record-commands';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('DistributedLockService on a real Redis', () => {
  let redis: TestRedis;
  const apps: INestApplicationContext[] = [];

  async function lockService(options: DistributedLockOptions = {}): Promise<DistributedLockService> {
    const app = await createReplica([DistributedLockModule.forRoot({ url: redis.url, ...options })]);
    apps.push(app);
    return app.get(DistributedLockService);
  }

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis.dispose();
  });

  it('gives a lock to one holder at a time', async () => {
    const [a, b] = await Promise.all([lockService(), lockService()]);
    const results = await Promise.all([a.acquireLock('one-holder', 10_000), b.acquireLock('one-holder', 10_000)]);
    expect(results.sort()).toEqual([false, true]);
  });

  it('stores a token no other acquisition has, with the TTL asked for', async () => {
    const [locks, other] = await Promise.all([lockService(), lockService()]);
    const observer = redis.client();
    const tokens = new Set<string>();
    for (let i = 0; i < 20; i++) {
      for (const instance of [locks, other]) {
        expect(await instance.acquireLock('token', 60_000)).toBe(true);
        const token = (await observer.get('lock:{token}'))!;
        expect(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url')).toHaveLength(16); // the random part
        tokens.add(token);
        expect(await observer.pttl('lock:{token}')).toBeGreaterThan(59_000);
        await instance.releaseLock('token');
      }
    }
    expect(tokens.size).toBe(40);
  });

  it('takes a plain lock with one SET NX PX and gives it back with one compare-and-delete, leaving nothing', async () => {
    const locks = await lockService();
    let token = '';
    const commands = await recordCommands(redis.url, 'lock:{plain}', async () => {
      expect(await locks.acquireLock('plain', 10_000)).toBe(true);
      token = (await redis.client().get('lock:{plain}'))!;
      await locks.releaseLock('plain');
    });
    const sentByLibrary = commands.filter((command) => command.words[0] !== 'get' || command.source === 'lua');
    expect(sentByLibrary.map((command) => command.words.slice(0, 1).concat(command.words.slice(3)))).toEqual([
      ['set', 'PX', '10000', 'NX'],
      ['evalsha', 'lock:{plain}', token, '0'],
      ['get'], // the compare inside the release script
      ['del'],
    ]);
    expect(sentByLibrary[0].words.slice(1, 3)).toEqual(['lock:{plain}', token]);
    expect(await redis.client().keys('lock:{plain}*')).toEqual([]);
  });

  // Reads the server's own I/O counters: only on a Redis the suite started itself.
  (CAN_CONTROL_REDIS ? it : it.skip)('sends the commands of locks taken at once in a few writes', async () => {
    const locks = await lockService();
    const observer = redis.client();
    const readsByServer = async () => Number(/total_reads_processed:(\d+)/.exec(await observer.info('stats'))![1]);
    const keys = Array.from({ length: 64 }, (_, i) => `at-once:${i}`);

    const before = await readsByServer();
    expect(await Promise.all(keys.map((key) => locks.acquireLock(key, 10_000)))).toEqual(keys.map(() => true));
    const reads = (await readsByServer()) - before - 1; // less the INFO that asked

    // The first SET alone (nothing else was in flight), the other 63 in writes of 16 (the last of 15),
    // however the kernel splits them: 5 writes, and one read more for a split.
    expect(reads).toBeLessThanOrEqual(6);
    await Promise.all(keys.map((key) => locks.releaseLock(key)));
  });

  it('issues fencing tokens only when asked, per call or for the whole module', async () => {
    const plain = await lockService();
    const fenced = await lockService({ fencing: true });
    const observer = redis.client();

    expect(await plain.withLock('unfenced', 10_000, (lock) => lock.fencingToken)).toEqual({
      ran: true,
      result: undefined,
    });
    expect(await observer.exists('lock:{unfenced}:state')).toBe(0);

    const perCall = await plain.withLock('fenced-per-call', 10_000, (lock) => lock.fencingToken, { fencing: true });
    expect(perCall.ran && perCall.result).toBe(Number(await observer.hget('lock:{fenced-per-call}:state', 'fence')));

    expect(await fenced.acquireLock('fenced-module', 10_000)).toBe(true);
    expect(fenced.fencingToken('fenced-module')).toBe(
      Number(await observer.hget('lock:{fenced-module}:state', 'fence')),
    );
    const optedOut = await fenced.withLock('fenced-opt-out', 10_000, (lock) => lock.fencingToken, { fencing: false });
    expect(optedOut).toEqual({ ran: true, result: undefined });
  });

  it('lets only the owner release: another instance releasing leaves the lock in place', async () => {
    const [owner, other] = await Promise.all([lockService(), lockService()]);
    const observer = redis.client();
    expect(await owner.acquireLock('owned', 10_000)).toBe(true);

    await other.releaseLock('owned');
    expect(await observer.exists('lock:{owned}')).toBe(1);
    expect(await other.acquireLock('owned', 10_000)).toBe(false);

    await owner.releaseLock('owned');
    expect(await observer.exists('lock:{owned}')).toBe(0);
    expect(await other.acquireLock('owned', 10_000)).toBe(true);
  });

  it('does not delete a lock that expired and was taken by another holder', async () => {
    const [slow, next] = await Promise.all([lockService(), lockService()]);
    expect(await slow.acquireLock('expired', 200)).toBe(true);
    await sleep(400);
    expect(await next.acquireLock('expired', 10_000)).toBe(true);

    await slow.releaseLock('expired');

    expect(await redis.client().exists('lock:{expired}')).toBe(1);
    expect(next.holdsLock('expired')).toBe(true);
  });

  it('frees a lock whose holder never releases it once its TTL has passed', async () => {
    const [holder, waiter] = await Promise.all([lockService(), lockService()]);
    expect(await holder.acquireLock('ttl', 300)).toBe(true);
    expect(await waiter.acquireLock('ttl', 300)).toBe(false);
    await sleep(500);
    expect(await waiter.acquireLock('ttl', 300)).toBe(true);
  });

  it('is not reentrant: asking again for a held key resolves false and leaves the TTL alone', async () => {
    const locks = await lockService();
    expect(await locks.acquireLock('reentrant', 5_000)).toBe(true);
    const ttlBefore = await redis.client().pttl('lock:{reentrant}');
    expect(await locks.acquireLock('reentrant', 60_000)).toBe(false);
    expect(await redis.client().pttl('lock:{reentrant}')).toBeLessThanOrEqual(ttlBefore);
    expect(locks.holdsLock('reentrant')).toBe(true);
  });

  it('resolves releasing a key this instance does not hold without touching Redis state', async () => {
    const locks = await lockService();
    await redis.client().set('lock:{foreign}', 'someone-else', 'PX', 10_000);
    await expect(locks.releaseLock('foreign')).resolves.toBeUndefined();
    expect(await redis.client().get('lock:{foreign}')).toBe('someone-else');
  });

  it('forgets locks left to expire without a release, so one-off keys do not pile up in memory', async () => {
    const locks = await lockService();
    // The registry's map of names (internal): what this instance remembers.
    type Internals = { engine: { parts: { registry: { byName: Map<string, unknown> } } } };
    const held = (locks as unknown as Internals).engine.parts.registry.byName;
    const started = Date.now();
    await Promise.all(Array.from({ length: 1_100 }, (_, i) => locks.acquireLock(`one-off:${i}`, 3_000)));
    expect(held.size).toBe(1_100); // none has expired yet, so the sweep at 1,024 kept them all
    await sleep(3_000 - (Date.now() - started) + 100); // now every one of them has expired
    await Promise.all(Array.from({ length: 1_024 }, (_, i) => locks.acquireLock(`later:${i}`, 60_000)));
    expect(held.size).toBeLessThanOrEqual(1_024);
    expect(locks.holdsLock('later:0')).toBe(true);
  });

  it('extends only a lock it still owns', async () => {
    const [owner, other] = await Promise.all([lockService(), lockService()]);
    expect(await owner.acquireLock('extend', 1_000)).toBe(true);
    expect(await owner.extendLock('extend', 60_000)).toBe(true);
    expect(await redis.client().pttl('lock:{extend}')).toBeGreaterThan(59_000);
    expect(await other.extendLock('extend', 60_000)).toBe(false);

    await redis.client().set('lock:{extend}', 'taken-over', 'PX', 10_000);
    expect(await owner.extendLock('extend', 60_000)).toBe(false);
    expect(await redis.client().pttl('lock:{extend}')).toBeLessThanOrEqual(10_000);
  });

  it('withLock runs the function only when acquired and always releases, also when it throws', async () => {
    const [a, b] = await Promise.all([lockService(), lockService()]);
    const observer = redis.client();

    expect(await a.withLock('with', 10_000, () => 7)).toEqual({ ran: true, result: 7 });
    expect(await observer.exists('lock:{with}')).toBe(0);

    let inside: unknown;
    const blocked = await a.withLock('with', 10_000, async () => {
      inside = await b.withLock('with', 10_000, () => 'never');
      return 'outer';
    });
    expect(blocked).toEqual({ ran: true, result: 'outer' });
    expect(inside).toEqual({ ran: false, reason: 'held' });

    await expect(
      a.withLock('with', 10_000, () => {
        throw new Error('job failed');
      }),
    ).rejects.toThrow('job failed');
    expect(await observer.exists('lock:{with}')).toBe(0);
  });

  it('reloads its scripts with one fallback after SCRIPT FLUSH or a restart', async () => {
    const [plain, fenced] = await Promise.all([lockService(), lockService({ fencing: true })]);
    await redis.client().script('FLUSH');
    expect(await plain.acquireLock('noscript', 10_000)).toBe(true);
    await plain.releaseLock('noscript');
    expect(await redis.client().exists('lock:{noscript}')).toBe(0);

    await redis.client().script('FLUSH');
    expect(await fenced.acquireLock('noscript-fenced', 10_000)).toBe(true);
    expect(fenced.fencingToken('noscript-fenced')).toBeGreaterThan(1);
    expect(await fenced.extendLock('noscript-fenced', 20_000)).toBe(true);
    await fenced.releaseLock('noscript-fenced');
    expect(await redis.client().exists('lock:{noscript-fenced}')).toBe(0);
  });

  it('writes under keyPrefix into the configured db', async () => {
    const locks = await lockService({ keyPrefix: 'billing:', db: 3 });
    expect(await locks.acquireLock('invoices', 10_000)).toBe(true);
    expect(await redis.client(3).exists('billing:lock:{invoices}')).toBe(1);
    expect(await redis.client(0).exists('billing:lock:{invoices}')).toBe(0);
    await locks.releaseLock('invoices');
    expect(await redis.client(3).exists('billing:lock:{invoices}')).toBe(0);
  });

  it('reuses a given ioredis client', async () => {
    const client = new Redis(redis.url, { enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
    const locks = await lockService({ url: undefined, client });
    expect(locks.client).toBe(client);
    expect(await locks.acquireLock('shared-client', 10_000)).toBe(true);
    expect(await client.exists('lock:{shared-client}')).toBe(1);
    await locks.releaseLock('shared-client');
    client.disconnect();
  });

  it.each([
    ['an empty key', () => ['', 1000]],
    ['a zero TTL', () => ['key', 0]],
  ])('rejects %s in acquireLock with a TypeError', async (_case, args) => {
    const locks = await lockService();
    const [key, ttl] = args() as [string, number];
    await expect(locks.acquireLock(key, ttl)).rejects.toThrow(TypeError);
  });
});

describe('DistributedLockService with Redis authentication', () => {
  let redis: TestRedis;
  const apps: INestApplicationContext[] = [];
  beforeAll(async () => {
    redis = await startTestRedis([
      '--requirepass',
      'default-secret',
      '--user',
      'cron',
      'on',
      '>cron-secret',
      '~locks:*',
      '&*',
      '+@all',
    ]);
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis.dispose();
  });

  async function connect(options: DistributedLockOptions): Promise<DistributedLockService> {
    const app = await createReplica([DistributedLockModule.forRoot(options)]);
    apps.push(app);
    return app.get(DistributedLockService);
  }

  it('authenticates with a password', async () => {
    const locks = await connect({ host: redis.host, port: redis.port, password: 'default-secret' });
    expect(locks.isConnected()).toBe(true);
    expect(await locks.acquireLock('auth', 10_000)).toBe(true);
  });

  it('authenticates as an ACL user given in the URL, within the keys that user may write', async () => {
    const locks = await connect({
      url: `redis://cron:cron-secret@${redis.host}:${redis.port}`,
      keyPrefix: 'locks:',
      failMode: 'closed',
    });
    expect(locks.isConnected()).toBe(true);
    expect(await locks.acquireLock('acl', 10_000)).toBe(true);
    await locks.releaseLock('acl');
  });

  it('fails at bootstrap when the password is wrong, instead of running unlocked', async () => {
    await expect(
      connect({ host: redis.host, port: redis.port, password: 'wrong', acquireTimeoutMs: 300, logger: false }),
    ).rejects.toThrow(DistributedLockConfigError);
  });
});
