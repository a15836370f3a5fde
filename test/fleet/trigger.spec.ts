import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import {
  currentLock,
  DistributedLock,
  DistributedLockModule,
  DistributedLockService,
  TriggerRefusedError,
  UnknownJobError,
} from '../../src';
import { jobsFirstDeclaredKey, jobsKey, jobTickField, lockKeys } from '../../src/core/keys';
import { createNamedReplicas, REPLICA } from '../support/create-replica';
import { eventually, sleep } from '../support/real-time';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { compileCli, runCli } from './cli-process';

const PREFIX = 'app:';
const DAY = 86_400_000;
/** The latest 02:00 UTC at least a minute old: an occurrence of the daily job below. */
const lastTwoAm = (): number => {
  const today = Math.floor(Date.now() / DAY) * DAY + 2 * 3_600_000;
  return today <= Date.now() - 60_000 ? today : today - DAY;
};

/** Every run either replica made: which replica, the job, and what its lock says started it. */
const runs: { replica: string; job: string; trigger: string; tick: number | undefined }[] = [];

@Injectable()
class Reports {
  constructor(@Inject(REPLICA) readonly replica: string) {}

  // No ScheduleModule: only triggers (and direct calls) run these, so every run is the test's.
  @Cron('0 0 * * * *')
  @DistributedLock('trigger:hourly', 30_000)
  hourly(): void {
    const lock = currentLock()!;
    runs.push({ replica: this.replica, job: 'hourly', trigger: lock.trigger, tick: lock.tick });
  }

  @Cron('0 0 4 * * *', { timeZone: 'UTC' })
  @DistributedLock({ key: 'trigger:buffered', ttlMs: 30_000, overlap: 'buffer-one' })
  buffered(): void {
    const lock = currentLock()!;
    runs.push({ replica: this.replica, job: 'buffered', trigger: lock.trigger, tick: lock.tick });
  }

  @Cron('0 0 2 * * *', { timeZone: 'UTC' })
  @DistributedLock({ key: 'trigger:daily', ttlMs: 30_000, retry: { attempts: 2, backoffMs: 1_000 } })
  daily(): void {
    const lock = currentLock()!;
    runs.push({ replica: this.replica, job: 'daily', trigger: lock.trigger, tick: lock.tick });
  }
}

describe('running a job now, or a missed occurrence of it: fleet.trigger and the CLI (real Redis)', () => {
  jest.setTimeout(30_000);
  let redis: TestRedis;
  let apps: INestApplicationContext[];
  let buildDir: string;
  const fleet = () => apps[0].get(DistributedLockService).fleet;

  beforeAll(async () => {
    redis = await startTestRedis();
    // The daily job has been declared for two days: its recent occurrences are its own.
    await redis.client().hset(jobsFirstDeclaredKey(PREFIX), 'Reports.daily', String(Date.now() - 2 * DAY));
    apps = await createNamedReplicas(
      ['a', 'b'],
      (replicaName) => [
        DistributedLockModule.forRoot({
          url: redis.url,
          keyPrefix: PREFIX,
          replicaName,
          logger: false,
          manualTriggers: true,
        }),
      ],
      [Reports],
    );
    buildDir = mkdtempSync(join(tmpdir(), 'trigger-cli-'));
  });
  beforeEach(() => {
    runs.length = 0;
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis.dispose();
    rmSync(buildDir, { recursive: true, force: true });
  });

  it('runs the job now on exactly one replica, attributed manual, serving no occurrence', async () => {
    const started = await fleet().trigger('Reports.hourly', { by: 'alice' });
    await sleep(1_500); // a second replica taking it too would show by now

    expect(started).toEqual({
      job: 'Reports.hourly',
      replica: expect.stringMatching(/^[ab]$/),
      startedAt: expect.any(Number),
      occurrence: undefined,
    });
    expect(runs).toEqual([{ replica: started.replica, job: 'hourly', trigger: 'manual', tick: undefined }]);
    // The schedule's occurrences are untouched: the next one runs as usual.
    expect(
      await redis.client().hget(lockKeys(PREFIX, 'trigger:hourly').state, jobTickField('Reports.hourly')),
    ).toBeNull();
    const [record] = await fleet().runs('Reports.hourly', { limit: 1 });
    expect(record).toMatchObject({ replica: started.replica, trigger: 'manual', outcome: 'ok' });
  });

  it('refuses a paused job with the pause and its note, and runs it with force', async () => {
    await fleet().pause('Reports.hourly', 'ops', 'warehouse migration');
    await expect(fleet().trigger('Reports.hourly')).rejects.toThrow(
      new TriggerRefusedError('Reports.hourly is paused (by ops: warehouse migration); resume it, or force the run.'),
    );
    expect(runs).toEqual([]);

    await fleet().trigger('Reports.hourly', { force: true });
    await eventually(() => runs.length === 1);
    expect(runs[0]).toMatchObject({ job: 'hourly', trigger: 'manual' });
    await fleet().resume('Reports.hourly');
  });

  it('is refused, not queued, while a run holds the job lock', async () => {
    const locks = apps[1].get(DistributedLockService);
    expect(await locks.acquireLock('trigger:hourly', 10_000)).toBe(true);
    try {
      await expect(fleet().trigger('Reports.hourly')).rejects.toThrow(
        /^[ab] did not run Reports\.hourly: a run of the job holds its lock now\.$/,
      );
    } finally {
      await locks.releaseLock('trigger:hourly');
    }
    await sleep(1_500);
    expect(runs).toEqual([]);
  });

  it("with overlap: 'buffer-one', waits for the run holding the lock, then runs once", async () => {
    const locks = apps[1].get(DistributedLockService);
    expect(await locks.acquireLock('trigger:buffered', 10_000)).toBe(true);
    const trigger = fleet().trigger('Reports.buffered', { timeoutMs: 10_000 });
    await sleep(1_500);
    expect(runs).toEqual([]); // still held: the run waits
    await locks.releaseLock('trigger:buffered');

    const started = await trigger;
    await sleep(1_000);
    expect(runs).toEqual([{ replica: started.replica, job: 'buffered', trigger: 'manual', tick: undefined }]);
  });

  it('never starts after whoever asked stopped waiting: a buffered run past its deadline is dropped', async () => {
    const locks = apps[1].get(DistributedLockService);
    expect(await locks.acquireLock('trigger:buffered', 10_000)).toBe(true);
    try {
      await expect(fleet().trigger('Reports.buffered', { timeoutMs: 1_000 })).rejects.toThrow(
        /^([ab] did not run Reports\.buffered: .*|No replica started Reports\.buffered within 1000 ms \([ab] took it, and did not say it started\)\.)$/,
      );
    } finally {
      await locks.releaseLock('trigger:buffered');
    }
    await sleep(2_500); // the lock is free: a run that had not given up would start now
    expect(runs).toEqual([]);
  });

  it('runs a missed occurrence once, counted as its run; a second trigger of it is refused', async () => {
    const occurrence = lastTwoAm();
    expect((await fleet().missed('Reports.daily', { from: occurrence, to: occurrence })).missed).toEqual([occurrence]);

    const started = await fleet().trigger('Reports.daily', { occurrence: new Date(occurrence) });
    expect(started.occurrence).toBe(occurrence);
    await eventually(() => runs.length === 1);
    const report = () => fleet().missed('Reports.daily', { from: occurrence, to: occurrence });
    for (let tries = 0; (await report()).ran === 0; tries++) {
      if (tries > 50) throw new Error('the run of the filled occurrence was never recorded');
      await sleep(20);
    }
    expect((await report()).missed).toEqual([]);

    expect(runs).toEqual([{ replica: started.replica, job: 'daily', trigger: 'manual', tick: occurrence }]);
    await expect(fleet().trigger('Reports.daily', { occurrence })).rejects.toThrow(
      `The occurrence ${new Date(occurrence).toISOString()} of Reports.daily already ran (or is running).`,
    );
    await expect(fleet().trigger('Reports.daily', { occurrence: occurrence + 1_000 })).rejects.toThrow(
      `${new Date(occurrence + 1_000).toISOString()} is not an occurrence of Reports.daily (0 0 2 * * *), or is in the future.`,
    );
    expect(runs).toHaveLength(1);
  });

  it('says so when no live replica runs the job, or the job is unknown', async () => {
    const record = {
      key: 'ghost',
      ttlMs: 1_000,
      cron: null,
      timeZone: null,
      utcOffset: null,
      declaredBy: 'old',
      declaredAt: 0,
    };
    await redis.client().hset(jobsKey(PREFIX), 'Ghost.job', JSON.stringify(record));
    await expect(fleet().trigger('Ghost.job')).rejects.toThrow(
      /^No live replica runs Ghost\.job with manualTriggers on \(of the replicas taking triggers, [ab], [ab] are, without it\)\.$/,
    );
    await expect(fleet().trigger('Nobody.here')).rejects.toBeInstanceOf(UnknownJobError);
  });

  it('from the CLI: exits 0 once a replica started the run, 1 when refused, 2 for a bad --occurrence', async () => {
    const main = compileCli(buildDir);
    const at = ['--url', redis.url, '--prefix', PREFIX];

    const started = await runCli(main, ['trigger', 'Reports.hourly', ...at], {});
    expect(started).toMatchObject({ code: 0, stderr: '' });
    expect(started.stdout).toMatch(/^Started a run now of Reports\.hourly on [ab] \(\d{4}-\d\d-\d\dT[\d:.]+Z\)\.\n$/);
    await eventually(() => runs.length === 1);

    const refused = await runCli(main, ['trigger', 'Ghost.job', ...at], {});
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toMatch(/^dpa-distributed-lock-cron: No live replica runs Ghost\.job/);

    const bad = await runCli(main, ['trigger', 'Reports.daily', '--occurrence', 'yesterday', ...at], {});
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr).toBe(
      'dpa-distributed-lock-cron: --occurrence must be an ISO-8601 date and time, got "yesterday" (see --help)\n',
    );
  });
});
