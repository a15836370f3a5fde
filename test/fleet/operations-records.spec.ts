import type { INestApplicationContext } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import { Cron, CronExpression, Interval } from '@nestjs/schedule';
import { DistributedLock, DistributedLockModule, type DistributedLockOptions, LockEngine } from '../../src';
import { parseRunRecord } from '../../src/core/fleet/fleet-records';
import { tokenOwner } from '../../src/core/keys';
import { createReplica } from '../support/create-replica';
import { recordCommands } from '../support/record-commands';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => Promise<boolean>, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms`);
    await sleep(20);
  }
}

@Injectable()
class BillingJobs {
  runs = 0;

  @Cron(CronExpression.EVERY_HOUR, { timeZone: 'Europe/Paris' })
  @DistributedLock('billing', 30_000)
  invoice(): string {
    this.runs++;
    return 'invoiced';
  }

  @Interval(3_600_000)
  @DistributedLock('sweep', 30_000)
  sweep(): void {
    throw new Error('sweep failed');
  }

  @DistributedLock({ key: (tenant: string) => `tenant:${tenant}`, ttlMs: 30_000 })
  syncTenant(tenant: string): string {
    return tenant;
  }

  @Cron(CronExpression.EVERY_MINUTE, { disabled: true })
  @DistributedLock('disabled', 30_000)
  notScheduled(): void {}
}

/** Loaded by the process, provided by no application below. */
@Injectable()
export class ElsewhereJobs {
  @Cron(CronExpression.EVERY_HOUR)
  @DistributedLock('elsewhere', 30_000)
  report(): void {}
}

describe('operations records on a real Redis', () => {
  let redis: TestRedis;
  const apps: INestApplicationContext[] = [];
  const boot = async (options: DistributedLockOptions = {}) => {
    const app = await createReplica(
      [DistributedLockModule.forRoot({ url: redis.url, logger: false, replicaName: 'replica-a', ...options })],
      [BillingJobs],
    );
    apps.push(app);
    return app;
  };
  const runsOf = async (prefix: string, key: string) =>
    (await redis.client().xrange(`${prefix}lock:{${key}}:runs`, '-', '+')).map(([id, fields]) => ({
      id,
      ...parseRunRecord(fields),
    }));

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('declares each guarded job at startup: lock name, TTL, schedule, replica', async () => {
    await boot({ keyPrefix: 'declare:' });
    const jobs = await redis.client().hgetall('declare:jobs');
    expect(JSON.parse(jobs['BillingJobs.invoice'])).toEqual({
      key: 'billing',
      ttlMs: 30_000,
      cron: CronExpression.EVERY_HOUR,
      timeZone: 'Europe/Paris',
      utcOffset: null,
      declaredBy: 'replica-a',
      declaredAt: expect.any(Number),
    });
    expect(JSON.parse(jobs['BillingJobs.sweep'])).toMatchObject({ key: 'sweep', cron: null });
    // Only the jobs this application runs: not a disabled @Cron, nor a class it does not provide.
    expect(Object.keys(jobs).sort()).toEqual(['BillingJobs.invoice', 'BillingJobs.sweep', 'BillingJobs.syncTenant']);
    expect(Object.keys(await redis.client().hgetall('declare:jobs:first-declared')).sort()).toEqual(
      Object.keys(jobs).sort(),
    );
  });

  it("records a schedule declared without a zone with this process's zone, the one it is read in", async () => {
    const locks = new LockEngine({ url: redis.url, logger: false, keyPrefix: 'zone:' });
    await locks.waitUntilConnected();
    await locks.declareJobs([
      { name: 'Local.job', key: 'local', ttlMs: 1_000, cron: '0 * * * *', timeZone: null, utcOffset: null },
      { name: 'Offset.job', key: 'offset', ttlMs: 1_000, cron: '0 * * * *', timeZone: null, utcOffset: 120 },
    ]);
    await locks.close();
    const jobs = await redis.client().hgetall('zone:jobs');
    expect(JSON.parse(jobs['Local.job']).timeZone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
    expect(JSON.parse(jobs['Offset.job'])).toMatchObject({ timeZone: null, utcOffset: 120 });
  });

  it('declares when the connection comes, and again after Redis lost its data', async () => {
    const locks = new LockEngine({ url: redis.url, logger: false, keyPrefix: 'redeclare:' });
    const job = { name: 'Early.job', key: 'early', ttlMs: 1_000, cron: null, timeZone: null, utcOffset: null };
    await locks.declareJobs([job]); // before the connection is up: does not wait for it
    const declared = async () => (await redis.client().hget('redeclare:jobs', 'Early.job')) !== null;
    await eventually(declared);
    if (CAN_CONTROL_REDIS) {
      await redis.kill(); // no persistence: the declaration is gone with everything else
      await redis.start();
      await eventually(declared);
    }
    await locks.close();
  });

  it('records each run with its release, in the same script call: replica, occurrence, outcome', async () => {
    const jobs = (await boot({ keyPrefix: 'history:' })).get(BillingJobs);
    const commands = await recordCommands(redis.url, 'history:lock:{billing}', async () => {
      await jobs.invoice();
    });
    expect(commands.filter((command) => command.source === 'client').map((command) => command.words[0])).toEqual([
      'evalsha',
      'evalsha',
    ]);
    await expect(jobs.sweep()).rejects.toThrow('sweep failed');
    const [invoice] = await runsOf('history:', 'billing');
    expect(invoice).toMatchObject({
      job: 'BillingJobs.invoice',
      replica: 'replica-a',
      outcome: 'ok',
      error: undefined,
      tick: expect.any(Number),
    });
    expect(invoice.tick! % 3_600_000).toBe(0);
    expect(await runsOf('history:', 'sweep')).toEqual([
      expect.objectContaining({ job: 'BillingJobs.sweep', outcome: 'error', error: 'sweep failed', tick: undefined }),
    ]);
    expect(await redis.client().pttl('history:lock:{billing}:runs')).toBeGreaterThan(604_700_000);
  });

  it('keeps about historyLength records per lock name', async () => {
    const locks = new LockEngine({ url: redis.url, logger: false, keyPrefix: 'capped:', historyLength: 10 });
    for (let i = 0; i < 300; i++) await locks.runJob('Capped.job', 'capped', 10_000, () => i);
    await locks.close();
    const length = await redis.client().xlen('capped:lock:{capped}:runs');
    expect(length).toBeGreaterThanOrEqual(10);
    expect(length).toBeLessThan(300);
  });

  it('takes a job without schedule or fencing with the pause check and SET NX only', async () => {
    const jobs = (await boot({ keyPrefix: 'plainjob:' })).get(BillingJobs);
    const commands = await recordCommands(redis.url, 'plainjob:lock:{sweep}', async () => {
      await expect(jobs.sweep()).rejects.toThrow('sweep failed');
    });
    expect(commands.map((command) => `${command.source} ${command.words[0]}`)).toEqual([
      'client evalsha',
      'lua hexists',
      'lua set',
      'client evalsha',
      'lua get',
      'lua del',
      'lua xadd',
      'lua pexpire',
    ]);
  });

  it('neither pauses nor records a job whose lock name is computed per call', async () => {
    const jobs = (await boot({ keyPrefix: 'computed:' })).get(BillingJobs);
    await redis.client().hset('computed:lock:{tenant:acme}:paused', 'BillingJobs.syncTenant', '{}');
    const commands = await recordCommands(redis.url, 'computed:lock:{tenant:acme}', async () => {
      await expect(jobs.syncTenant('acme')).resolves.toBe('acme');
    });
    expect(commands.filter((command) => command.source === 'client').map((command) => command.words[0])).toEqual([
      'set',
      'evalsha',
    ]);
    expect(await redis.client().exists('computed:lock:{tenant:acme}:runs')).toBe(0);
  });

  it('names the holder in the lock token', async () => {
    const locks = new LockEngine({ url: redis.url, logger: false, keyPrefix: 'holder:', replicaName: 'worker-7' });
    const before = Date.now();
    await locks.acquireLock('ledger', 10_000);
    const owner = tokenOwner((await redis.client().get('holder:lock:{ledger}'))!);
    await locks.close();
    expect(owner.replica).toBe('worker-7');
    expect(owner.since).toBeGreaterThanOrEqual(before);
    expect(owner.since).toBeLessThanOrEqual(Date.now());
  });

  it('skips a paused job with its own reason, without serving its occurrence, until it is resumed', async () => {
    const app = await boot({ keyPrefix: 'pause:' });
    const jobs = app.get(BillingJobs);
    await redis.client().hset('pause:lock:{billing}:paused', 'BillingJobs.invoice', '{"by":"ops","at":1}');
    const commands = await recordCommands(redis.url, 'pause:lock:{billing}', async () => {
      await expect(jobs.invoice()).resolves.toBeUndefined();
    });
    expect(commands.filter((command) => command.source === 'client')).toHaveLength(1); // one acquisition, nothing else
    expect(jobs.runs).toBe(0);
    expect(await redis.client().hget('pause:lock:{billing}:state', 'tick:BillingJobs.invoice')).toBeNull();
    await redis.client().hdel('pause:lock:{billing}:paused', 'BillingJobs.invoice');
    await expect(jobs.invoice()).resolves.toBe('invoiced');
  });

  it('records a run abandoned at shutdown, once, even when it ends later', async () => {
    const locks = new LockEngine({ url: redis.url, logger: false, keyPrefix: 'abandon:', shutdownTimeoutMs: 100 });
    let finish!: () => void;
    const run = locks.runJob('Slow.job', 'slow', 10_000, () => new Promise<void>((resolve) => (finish = resolve)));
    await sleep(50);
    await locks.drain();
    finish(); // it ends after it was abandoned, while the connection is still open
    await run;
    await locks.close();
    expect(await runsOf('abandon:', 'slow')).toEqual([
      expect.objectContaining({ job: 'Slow.job', outcome: 'abandoned', error: expect.stringContaining('shut down') }),
    ]);
  });

  it('with operations off, keeps a job to SET NX and compare-and-delete, and writes no record', async () => {
    const jobs = (await boot({ keyPrefix: 'off:', operations: false })).get(BillingJobs);
    const commands = await recordCommands(redis.url, 'off:', async () => {
      await expect(jobs.sweep()).rejects.toThrow('sweep failed');
    });
    expect(commands.filter((command) => command.source === 'client').map((command) => command.words[0])).toEqual([
      'set',
      'evalsha',
    ]);
    expect(await redis.client().keys('off:*')).toEqual([]);
  });
});
