import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import {
  DistributedLock,
  DistributedLockModule,
  DistributedLockService,
  type LockEvent,
  UnknownJobError,
} from '../../src';
import { cronTick, LockEngine } from '../../src/core';
import { createReplica } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { compileCli, runCli } from './cli-process';

const HOURLY = '0 0 * * * *';
let newRuns = 0;
const events: LockEvent[] = [];

/** The new version: the job is named by its schedule, as @nestjs/schedule and ShedLock users name jobs. */
@Injectable()
class Reports {
  // No ScheduleModule: the test calls it, as the scheduler would.
  @Cron(HOURLY, { name: 'hourly-report', timeZone: 'UTC' })
  @DistributedLock('names:report', 30_000)
  build(): void {
    newRuns++;
  }
}

/** The old version's declaration of the same job: `Class.method`, no schedule name. */
const OLD_DECLARATION = {
  name: 'Reports.build',
  key: 'names:report',
  ttlMs: 30_000,
  cron: HOURLY,
  timeZone: 'UTC',
  utcOffset: null,
};

describe('job names: a @Cron({ name }) job is shown and found by its name, Class.method stays an alias (real Redis)', () => {
  jest.setTimeout(30_000);
  let redis: TestRedis;
  let newReplica: INestApplicationContext;
  let oldReplica: LockEngine;
  let buildDir: string;
  let main: string;
  const at = () => ['--url', redis.url];

  beforeAll(async () => {
    redis = await startTestRedis();
    oldReplica = new LockEngine({ url: redis.url, replicaName: 'old', logger: false });
    // Connected first: a declaration made before the connection is written once it comes, which
    // could be after the new replica's own, and the old record would then be the one kept.
    await oldReplica.waitUntilConnected();
    await oldReplica.declareJobs([OLD_DECLARATION]);
    newReplica = await createReplica(
      [
        DistributedLockModule.forRoot({
          url: redis.url,
          replicaName: 'new',
          logger: false,
          onEvent: (event) => events.push(event),
        }),
      ],
      [Reports],
    );
    buildDir = mkdtempSync(join(tmpdir(), 'job-names-'));
    main = compileCli(buildDir);
  });
  afterAll(async () => {
    await Promise.all([newReplica.close(), oldReplica.close()]);
    await redis.dispose();
    rmSync(buildDir, { recursive: true, force: true });
  });
  const oldRun = () =>
    oldReplica.runJob('Reports.build', 'names:report', 30_000, () => 'ran', { tick: cronTick(HOURLY) });

  it('an old and a new replica side by side serve each occurrence once: the keys stay under Class.method', async () => {
    await newReplica.get(Reports).build();
    expect(newRuns).toBe(1);
    expect(events.find((event) => event.type === 'ran')).toMatchObject({ job: 'Reports.build', name: 'hourly-report' });
    expect(await oldRun()).toBeUndefined(); // the same occurrence, already served by the new replica
  });

  it('status shows the schedule name beside Class.method; history, missed and pause take either', async () => {
    const status = await runCli(main, ['status', ...at()]);
    expect(status.stdout).toMatch(/^hourly-report \(Reports\.build\) +names:report /m);

    const byName = await runCli(main, ['history', 'hourly-report', '--json', ...at()]);
    const byClassMethod = await runCli(main, ['history', 'Reports.build', '--json', ...at()]);
    expect(JSON.parse(byName.stdout)).toEqual(JSON.parse(byClassMethod.stdout));
    expect(JSON.parse(byName.stdout)).toEqual([expect.objectContaining({ job: 'Reports.build', replica: 'new' })]);
    expect((await runCli(main, ['missed', 'hourly-report', '--since', '2h', ...at()])).code).toBe(0);
  });

  it('a pause by the schedule name holds on the old replica too, even after the old one declares again', async () => {
    await oldReplica.declareJobs([OLD_DECLARATION]); // the old record, without the name, written last
    expect((await runCli(main, ['pause', 'hourly-report', '--by', 'ops', ...at()])).code).toBe(0);
    await redis.client().hdel('lock:{names:report}:state', 'tick:Reports.build'); // a fresh occurrence for both
    expect(await oldRun()).toBeUndefined();
    await newReplica.get(Reports).build();
    expect(newRuns).toBe(1);
    const skips = await newReplica.get(DistributedLockService).fleet.jobs();
    expect(skips[0]).toMatchObject({ name: 'Reports.build', pause: expect.objectContaining({ by: 'ops' }) });

    expect((await runCli(main, ['resume', 'Reports.build', ...at()])).stdout).toBe(
      'Resumed Reports.build on every replica.\n',
    );
    expect(await oldRun()).toBe('ran');
  });

  it('an unknown name lists the known jobs by both names', async () => {
    await newReplica.get(DistributedLockService).declareJobs([{ ...OLD_DECLARATION, scheduleName: 'hourly-report' }]);
    const error = await newReplica
      .get(DistributedLockService)
      .fleet.runs('daily-report')
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(UnknownJobError);
    expect((error as Error).message).toContain('hourly-report (Reports.build)');
  });
});
