import type { Redis } from 'ioredis';
import { LockEngine } from '../../src/core';
import {
  ComputedLockNameError,
  InvalidLockArgumentError,
  UnknownJobError,
  UnscheduledJobError,
} from '../../src/core/errors';
import { FleetInspector, MAX_CHECKED_OCCURRENCES } from '../../src/core/fleet/fleet-inspector';
import { type JobRecord, type RunRecord, runRecordFields } from '../../src/core/fleet/fleet-records';
import { holderToken, jobsFirstDeclaredKey, jobsKey, lockKeys } from '../../src/core/keys';
import { startTestRedis, type TestRedis } from '../support/redis-server';

const PREFIX = 'app:';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The start of the current hour: hourly occurrences are whole hours before it. */
const hourStart = () => Math.floor(Date.now() / HOUR) * HOUR;

describe('FleetInspector on a real Redis', () => {
  let redis: TestRedis;
  let client: Redis;
  let fleet: FleetInspector;

  const declare = (name: string, record: Partial<JobRecord>, prefix = PREFIX) =>
    client.hset(
      jobsKey(prefix),
      name,
      JSON.stringify({
        key: null,
        ttlMs: 60_000,
        cron: null,
        timeZone: null,
        utcOffset: null,
        declaredBy: 'replica-a',
        declaredAt: Date.now(),
        ...record,
      } satisfies JobRecord),
    );
  /** Appends a run record, by default as its replica writes it: 1 s after its occurrence. */
  const record = (key: string, run: Partial<RunRecord> & Pick<RunRecord, 'job'>, id?: string) => {
    const startedAt = run.tick ?? Date.now();
    return client.xadd(
      lockKeys(PREFIX, key).runs,
      id ?? (run.tick === undefined ? '*' : `${run.tick + 1000}-0`),
      ...runRecordFields({
        replica: 'replica-a',
        tick: undefined,
        trigger: 'schedule',
        attempt: 1,
        startedAt,
        durationMs: 900,
        outcome: 'ok',
        error: undefined,
        fencingToken: undefined,
        ...run,
      }),
    );
  };

  beforeAll(async () => {
    redis = await startTestRedis();
    client = redis.client();
    fleet = new FleetInspector(client, PREFIX);
  });
  beforeEach(async () => {
    await client.flushdb();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  describe('jobs', () => {
    it('lists the declared jobs by name, with their pause and latest run; jobs sharing a lock keep their own', async () => {
      await declare('Reports.nightly', { key: 'reports', cron: '0 0 2 * * *' });
      await declare('Reports.weekly', { key: 'reports', cron: '0 0 3 * * 1' });
      await declare('Billing.perTenant', { key: null });
      await record('reports', { job: 'Reports.weekly', tick: hourStart() - 3 * HOUR, replica: 'replica-b' });
      await record('reports', { job: 'Reports.nightly', tick: hourStart() - 2 * HOUR, outcome: 'error', error: 'x' });
      await record('reports', { job: 'Reports.nightly', tick: hourStart() - HOUR, replica: 'replica-c' });
      await client.hset(lockKeys(PREFIX, 'reports').paused, 'Reports.weekly', JSON.stringify({ by: 'ops', at: 5 }));

      const jobs = await fleet.jobs();

      expect(jobs.map((job) => job.name)).toEqual(['Billing.perTenant', 'Reports.nightly', 'Reports.weekly']);
      expect(jobs[0]).toEqual({
        name: 'Billing.perTenant',
        record: expect.objectContaining({ key: null }),
        pause: undefined,
        lastRun: undefined,
      });
      expect(jobs[1]).toMatchObject({
        record: { key: 'reports', cron: '0 0 2 * * *', declaredBy: 'replica-a' },
        pause: undefined,
        lastRun: { job: 'Reports.nightly', replica: 'replica-c', tick: hourStart() - HOUR, outcome: 'ok' },
      });
      expect(jobs[2]).toMatchObject({
        pause: { by: 'ops', at: 5 },
        lastRun: { job: 'Reports.weekly', replica: 'replica-b', id: `${hourStart() - 3 * HOUR + 1000}-0` },
      });
    });

    it('leaves out a field that is not a job record', async () => {
      await declare('Reports.nightly', { key: 'reports' });
      await client.hset(jobsKey(PREFIX), 'garbage', 'not json');
      expect((await fleet.jobs()).map((job) => job.name)).toEqual(['Reports.nightly']);
    });
  });

  describe('locks', () => {
    it('lists every lock held now: holder, since, TTL left, fencing token; no state, history or pause key', async () => {
      const since = Date.now() - 12_000;
      await client.set(lockKeys(PREFIX, 'reports').lock, holderToken('u1.1', 'replica-a', since), 'PX', 60_000);
      await client.hset(lockKeys(PREFIX, 'reports').state, 'fence', '1719000000000042', 'tick:Reports.nightly', '1');
      await client.set(lockKeys(PREFIX, 'job}').lock, holderToken('u2.7', 'host:42@pod', since), 'PX', 5_000);
      await record('reports', { job: 'Reports.nightly' });
      await client.hset(lockKeys(PREFIX, 'reports').paused, 'Reports.nightly', '{}');
      await client.set(lockKeys(PREFIX, 'idle').state, 'a string, but not a lock');
      await client.set(lockKeys('other:', 'reports').lock, 'someone else', 'PX', 60_000);

      const locks = await fleet.locks();

      expect(locks).toEqual([
        {
          name: 'job}',
          key: 'app:lock:{job}}',
          replica: 'host:42@pod',
          since,
          ttlLeftMs: expect.any(Number),
          fencingToken: undefined,
        },
        {
          name: 'reports',
          key: 'app:lock:{reports}',
          replica: 'replica-a',
          since,
          ttlLeftMs: expect.any(Number),
          fencingToken: 1719000000000042,
        },
      ]);
      expect(locks[1].ttlLeftMs).toBeGreaterThan(55_000);
      expect(locks[1].ttlLeftMs).toBeLessThanOrEqual(60_000);
    });

    it('reads a token that names no holder (a replica of an older version), and a key without expiry', async () => {
      await client.set(lockKeys(PREFIX, 'legacy').lock, 'KQx3b5aR.1');
      expect(await fleet.locks()).toEqual([
        expect.objectContaining({ name: 'legacy', replica: undefined, since: undefined, ttlLeftMs: undefined }),
      ]);
    });

    it('matches its key prefix literally, glob characters included', async () => {
      await client.set(lockKeys('a*[x]:', 'mine').lock, 't@r', 'PX', 60_000);
      await client.set(lockKeys('aQQx:', 'other').lock, 't@r', 'PX', 60_000);
      const locks = await new FleetInspector(client, 'a*[x]:').locks();
      expect(locks.map((lock) => lock.key)).toEqual(['a*[x]:lock:{mine}']);
    });

    it('finds locks among many keys, with bounded SCAN calls', async () => {
      const pipeline = client.pipeline();
      for (let i = 0; i < 3000; i++) pipeline.set(`${PREFIX}cache:${i}`, 'x');
      for (let i = 0; i < 250; i++) pipeline.set(lockKeys(PREFIX, `tenant-${i}`).lock, `t.1@r${i}`, 'PX', 60_000);
      await pipeline.exec();
      const locks = await fleet.locks();
      expect(locks).toHaveLength(250);
      expect(new Set(locks.map((lock) => lock.replica)).size).toBe(250);
    });
  });

  describe('runs', () => {
    it('reads the newest runs of a job first, page after page of a shared stream', async () => {
      const pipeline = client.pipeline();
      for (let i = 1; i <= 450; i++) {
        const job = i % 2 === 0 ? 'Reports.nightly' : 'Reports.weekly';
        pipeline.xadd(lockKeys(PREFIX, 'reports').runs, `${i}-0`, ...runRecordFields(run(job, i)));
      }
      await pipeline.exec();
      await declare('Reports.nightly', { key: 'reports' });

      const latest = await fleet.runs('Reports.nightly', { limit: 3 });
      expect(latest.map((entry) => entry.id)).toEqual(['450-0', '448-0', '446-0']);
      expect(latest[0]).toEqual({ ...run('Reports.nightly', 450), id: '450-0' });
      expect(await fleet.runs('Reports.nightly', { limit: 1000 })).toHaveLength(225);
      expect(await fleet.runs('Reports.nightly')).toHaveLength(20);
    });

    it('needs the lock name of a job that computes it per call', async () => {
      await declare('Billing.perTenant', { key: null });
      await record('tenant-7', { job: 'Billing.perTenant' });
      await expect(fleet.runs('Billing.perTenant')).rejects.toThrow(ComputedLockNameError);
      expect(await fleet.runs('Billing.perTenant', { key: 'tenant-7' })).toHaveLength(1);
    });

    it('refuses a limit that is not a positive integer', async () => {
      await expect(fleet.runs('Reports.nightly', { limit: 0 })).rejects.toThrow(InvalidLockArgumentError);
    });

    function run(job: string, i: number): RunRecord {
      const fields = { job, replica: `r${i}`, tick: i * 1000, startedAt: i * 1000 + 3, durationMs: i };
      return { ...fields, outcome: 'ok', error: undefined, fencingToken: i, trigger: 'schedule', attempt: 1 };
    }
  });

  describe('missed', () => {
    it('reports occurrences that ran nowhere, the one in progress, and those a trimmed history cannot tell', async () => {
      const t = (hoursAgo: number) => hourStart() - hoursAgo * HOUR;
      await declare('Reports.hourly', { key: 'reports', cron: '0 0 * * * *' });
      await record('reports', { job: 'Reports.hourly', tick: t(6) }); // trimmed below
      await record('reports', { job: 'Reports.hourly', tick: t(5) });
      await record('reports', { job: 'Reports.other', tick: t(4) }); // another job's run of the same lock
      await record('reports', { job: 'Reports.hourly', tick: t(2) });
      await record('reports', { job: 'Reports.hourly', tick: t(1), outcome: 'error' }); // ran, and failed
      await client.xtrim(lockKeys(PREFIX, 'reports').runs, 'MAXLEN', 4);
      await client.hset(lockKeys(PREFIX, 'reports').state, 'tick:Reports.hourly', String(t(0)));

      const report = await fleet.missed('Reports.hourly', { from: t(7), to: new Date(t(0) + 1) });

      expect(report).toEqual({
        job: 'Reports.hourly',
        key: 'reports',
        schedule: '0 0 * * * *',
        from: t(7),
        to: t(0) + 1,
        occurrences: 8,
        ran: 3,
        inProgress: t(0),
        missed: [t(4), t(3)],
        toCatchUp: [], // the job has no catchUp policy
        unknown: [t(7), t(6)],
        historyLostUntil: t(5) + 1000, // the first record kept
      });
    });

    it('reads the schedule in the time zone the job declared', async () => {
      // Hourly at minute 0 in Kolkata (UTC+05:30) is minute 30 of each UTC hour.
      await declare('Reports.india', { key: 'india', cron: '0 0 * * * *', timeZone: 'Asia/Kolkata' });
      const from = hourStart() - 3 * HOUR;
      await record('india', { job: 'Reports.india', tick: from + HOUR / 2 });
      const report = await fleet.missed('Reports.india', { from, to: hourStart() });
      expect(report).toMatchObject({ occurrences: 3, ran: 1, missed: [from + 1.5 * HOUR, from + 2.5 * HOUR] });
    });

    it('checks the single occurrence of a one-off @Cron(date)', async () => {
      const at = hourStart() - HOUR;
      await declare('Launch.once', { key: 'launch', cron: new Date(at).toISOString() });
      expect(await fleet.missed('Launch.once', { from: at - DAY, to: Date.now() })).toMatchObject({
        occurrences: 1,
        missed: [at],
      });
    });

    it('calls unknown what an expired history may have held, and missed what it would still hold', async () => {
      const days = (n: number) => Math.floor(Date.now() / DAY) * DAY - n * DAY;
      await declare('Reports.daily', { key: 'daily', cron: '0 0 0 * * *', timeZone: 'UTC' });
      const report = await new FleetInspector(client, PREFIX, { historyRetentionMs: 3 * DAY }).missed('Reports.daily', {
        from: days(5),
        to: days(1),
      });
      expect(report).toMatchObject({ missed: [days(2), days(1)], unknown: [days(5), days(4), days(3)] });
    });

    it('counts only the occurrences from when the job was first declared', async () => {
      const second = 1000;
      const now = Math.floor(Date.now() / second) * second;
      await declare('Ticks.everySecond', { key: 'ticks', cron: '* * * * * *' });
      await client.hset(jobsFirstDeclaredKey(PREFIX), 'Ticks.everySecond', String(now - 10 * second));
      const report = await fleet.missed('Ticks.everySecond', { from: now - 60 * second, to: now });
      expect(report).toMatchObject({ from: now - 10 * second, occurrences: 11 });
    });

    it('reads by default the window its kept history covers, at most a day, even every second', async () => {
      const second = 1000;
      const now = Math.floor(Date.now() / second) * second;
      await declare('Ticks.everySecond', { key: 'ticks', cron: '* * * * * *' });
      await client.hset(jobsFirstDeclaredKey(PREFIX), 'Ticks.everySecond', String(now - 2 * DAY));
      for (let i = 120; i >= 1; i--) await record('ticks', { job: 'Ticks.everySecond', tick: now - i * second });
      await client.xtrim(lockKeys(PREFIX, 'ticks').runs, 'MAXLEN', 100); // the cap kept the last 100 runs

      const report = await fleet.missed('Ticks.everySecond', { to: now - second });
      expect(report.from).toBe(now - 99 * second); // when the first record kept was written
      expect(report).toMatchObject({ occurrences: 99, ran: 99, missed: [], unknown: [] });

      // With no history left, a day of seconds is more than it checks: it reads the latest ones.
      await client.del(lockKeys(PREFIX, 'ticks').runs);
      const latest = await fleet.missed('Ticks.everySecond', { to: now });
      expect(latest.occurrences).toBeGreaterThan(0);
      expect(latest.occurrences).toBeLessThanOrEqual(MAX_CHECKED_OCCURRENCES);
      expect(latest.missed).toHaveLength(latest.occurrences);
      expect(latest.missed.at(-1)).toBe(now);
    }, 120_000); // naming a day of seconds is CPU work: 20 s beside a CI run on a 2-core machine, 30 s with more

    it('names the job, schedule and window errors', async () => {
      await declare('Reports.hourly', { key: 'reports', cron: '* * * * * *' });
      await declare('Sweep.interval', { key: 'sweep' });
      await declare('Billing.perTenant', { key: null, cron: '0 * * * * *' });
      const window = { from: Date.now() - HOUR, to: Date.now() };

      await expect(fleet.missed('Nope.job', window)).rejects.toThrow(
        new UnknownJobError('Nope.job', ['Billing.perTenant', 'Reports.hourly', 'Sweep.interval'], PREFIX),
      );
      await expect(fleet.missed('Sweep.interval', window)).rejects.toThrow(UnscheduledJobError);
      await expect(fleet.missed('Billing.perTenant', window)).rejects.toThrow(ComputedLockNameError);
      await expect(fleet.missed('Billing.perTenant', { ...window, key: 'tenant-1' })).resolves.toMatchObject({
        occurrences: 60,
      });
      await expect(fleet.missed('Reports.hourly', { from: window.to - 3 * HOUR, to: window.to })).rejects.toThrow(
        /at most 10000 occurrences/,
      );
      await expect(fleet.missed('Reports.hourly', { from: window.to, to: window.from })).rejects.toThrow(
        InvalidLockArgumentError,
      );
    });
  });

  describe('overdue', () => {
    it('reports the @Cron jobs whose latest due occurrence ran nowhere', async () => {
      const now = hourStart() + 10 * 60_000; // ten minutes past the hour
      const jobs = ['A.served', 'B.recorded', 'C.late', 'D.paused', 'E.interval', 'F.perTenant'];
      // Declared a day ago: each one's recent occurrences are its own.
      await client.hset(
        jobsFirstDeclaredKey(PREFIX),
        Object.fromEntries(jobs.map((job) => [job, String(now - 86_400_000)])),
      );
      await declare('A.served', { key: 'a', cron: '0 0 * * * *' });
      await declare('B.recorded', { key: 'b', cron: '0 0 * * * *' });
      await declare('C.late', { key: 'c', cron: '0 0 * * * *' });
      await declare('D.paused', { key: 'd', cron: '0 0 * * * *' });
      await declare('E.interval', { key: 'e' });
      await declare('F.perTenant', { key: null, cron: '0 0 * * * *' });
      await client.hset(lockKeys(PREFIX, 'a').state, 'tick:A.served', String(hourStart()));
      await record('b', { job: 'B.recorded', tick: hourStart() }); // its state expired, its record did not
      await record('c', { job: 'C.late', tick: hourStart() - HOUR });
      await client.hset(lockKeys(PREFIX, 'd').paused, 'D.paused', '{"by":"ops","at":1}');

      expect(await fleet.overdue({ graceMs: 60_000, now })).toEqual([
        { name: 'C.late', occurrence: hourStart(), lateMs: 10 * 60_000 },
      ]);
      // Within its grace, the occurrence before is the one due, and it ran.
      expect(await fleet.overdue({ graceMs: 11 * 60_000, now })).toEqual([]);
    });

    it('leaves out an occurrence from before the job was first declared, and a job forgotten', async () => {
      const now = hourStart() + 10 * 60_000;
      await declare('G.justDeployed', { key: 'g', cron: '0 0 * * * *' });
      await client.hset(jobsFirstDeclaredKey(PREFIX), 'G.justDeployed', String(hourStart() + 60_000));
      await declare('H.removed', { key: 'h', cron: '0 0 * * * *' });
      await client.hset(jobsFirstDeclaredKey(PREFIX), 'H.removed', String(now - 86_400_000));
      expect((await fleet.overdue({ graceMs: 60_000, now })).map((job) => job.name)).toContain('H.removed');
      expect((await fleet.overdue({ graceMs: 60_000, now })).map((job) => job.name)).not.toContain('G.justDeployed');
      expect(await fleet.forget('H.removed')).toBe(true);
      expect((await fleet.overdue({ graceMs: 60_000, now })).map((job) => job.name)).not.toContain('H.removed');
      expect((await fleet.jobs()).map((job) => job.name)).not.toContain('H.removed');
      expect(await fleet.forget('H.removed')).toBe(false);
    });
    it('does not report a one-off @Cron(date) that ran, once its state and history have expired', async () => {
      const now = Date.now();
      const at = hourStart() - 8 * DAY; // ran then; its served tick (a day) and history (7 days) are gone
      await declare('Launch.once', { key: 'launch', cron: new Date(at).toISOString() });
      await client.hset(jobsFirstDeclaredKey(PREFIX), 'Launch.once', String(at - DAY));
      expect((await fleet.overdue({ graceMs: 60_000, now })).map((job) => job.name)).not.toContain('Launch.once');

      // Within the history's retention, a one-off that ran nowhere is still reported.
      const recent = hourStart() - DAY;
      await declare('Launch.missed', { key: 'launch-2', cron: new Date(recent).toISOString() });
      await client.hset(jobsFirstDeclaredKey(PREFIX), 'Launch.missed', String(recent - DAY));
      expect((await fleet.overdue({ graceMs: 60_000, now })).map((job) => job.name)).toContain('Launch.missed');
    });
  });

  describe('steering', () => {
    it('releases a lock whoever holds it, leaving its state and history', async () => {
      const keys = lockKeys(PREFIX, 'reports');
      await client.set(keys.lock, holderToken('u.1', 'replica-a', 1), 'PX', 60_000);
      await client.hset(keys.state, 'fence', '7');
      await record('reports', { job: 'Reports.nightly' });

      expect(await fleet.release('reports')).toBe(true);
      expect(await client.exists(keys.lock, keys.state, keys.runs)).toBe(2);
      expect(await fleet.release('reports')).toBe(false);
    });

    it('pauses and resumes a job by name, in the pause hash of its lock', async () => {
      await declare('Reports.nightly', { key: 'reports', cron: '0 0 2 * * *' });
      const before = Date.now();

      expect(await fleet.pause('Reports.nightly', 'alice@laptop')).toBe(true);
      expect(await fleet.pause('Reports.nightly', 'bob')).toBe(false);
      const pause = JSON.parse((await client.hget(lockKeys(PREFIX, 'reports').paused, 'Reports.nightly'))!);
      expect(pause).toEqual({ by: 'bob', at: expect.any(Number) });
      expect(pause.at).toBeGreaterThanOrEqual(before);
      expect((await fleet.jobs())[0].pause).toEqual(pause);

      expect(await fleet.resume('Reports.nightly')).toBe(true);
      expect(await fleet.resume('Reports.nightly')).toBe(false);
      expect(await client.exists(lockKeys(PREFIX, 'reports').paused)).toBe(0);
    });

    it('keeps a note with a pause: why, beside who and when', async () => {
      await declare('Reports.nightly', { key: 'reports', cron: '0 0 2 * * *' });
      await fleet.pause('Reports.nightly', 'alice', 'warehouse migration until 14:00, <ticket 42>');

      expect((await fleet.jobs())[0].pause).toEqual({
        by: 'alice',
        at: expect.any(Number),
        note: 'warehouse migration until 14:00, <ticket 42>',
      });
      await expect(fleet.pause('Reports.nightly', 'alice', 42 as never)).rejects.toThrow(
        'note must be a string of at most 1000 characters, got 42.',
      );
      await expect(fleet.pause('Reports.nightly', 'alice', 'x'.repeat(1001))).rejects.toThrow(
        /^note must be a string of at most 1000 characters, got "x{80}…"\.$/,
      );
    });

    it('cannot pause by name a job that computes its lock name per call', async () => {
      await declare('Billing.perTenant', { key: null });
      await expect(fleet.pause('Billing.perTenant', 'ops')).rejects.toThrow(
        'Job "Billing.perTenant" computes its lock name on each call (a key function): it has no single lock to pause it on.',
      );
    });

    it('names an unknown job and at most 20 known ones', async () => {
      for (let i = 10; i < 35; i++) await declare(`Jobs.job${i}`, { key: `k${i}` });
      const error = await fleet.pause('Jobs.nope', 'ops').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UnknownJobError);
      expect((error as Error).message).toBe(
        `No job "Jobs.nope" is declared under the key prefix "app:". Known jobs: ${Array.from(
          { length: 20 },
          (_, i) => `Jobs.job${i + 10}`,
        ).join(', ')} and 5 more.`,
      );
      await expect(new FleetInspector(client, 'empty:').resume('Jobs.job10')).rejects.toThrow(
        /no replica has declared any job under the key prefix "empty:"/,
      );
    });
  });

  describe('with real replicas', () => {
    let engines: LockEngine[] = [];
    afterEach(async () => {
      await Promise.all(engines.map((engine) => engine.close()));
      engines = [];
    });
    const replica = (replicaName: string) => {
      const engine = new LockEngine({ url: redis.url, keyPrefix: PREFIX, replicaName, logger: false, fencing: true });
      engines.push(engine);
      return engine;
    };

    it('sees what replicas record: holders, runs, missed occurrences, and a pause they obey', async () => {
      const [a, b] = [replica('replica-a'), replica('replica-b')];
      const job = { name: 'Reports.hourly', key: 'reports', ttlMs: 60_000, cron: '0 0 * * * *' };
      await a.declareJobs([{ ...job, timeZone: null, utcOffset: null }]);
      const t = (hoursAgo: number) => hourStart() - hoursAgo * HOUR;
      // The fleet has run the job for a day: its occurrences of the last hours are its own.
      await client.hset(jobsFirstDeclaredKey(PREFIX), job.name, String(t(24)));
      for (const [engine, tick] of [
        [a, t(4)],
        [b, t(3)],
        [a, t(1)],
      ] as const) {
        expect(await engine.runJob(job.name, job.key, job.ttlMs, () => 'ran', { tick })).toBe('ran');
      }

      expect((await fleet.runs(job.name)).map((run) => [run.replica, run.tick, run.outcome])).toEqual([
        ['replica-a', t(1), 'ok'],
        ['replica-b', t(3), 'ok'],
        ['replica-a', t(4), 'ok'],
      ]);
      expect(await fleet.missed(job.name, { from: t(4), to: t(1) })).toMatchObject({ ran: 3, missed: [t(2)] });

      let holding!: () => void;
      const running = b.runJob(
        job.name,
        job.key,
        job.ttlMs,
        () => new Promise<void>((resolve) => (holding = resolve)),
        {
          tick: t(0),
        },
      );
      await waitFor(() => holding !== undefined);
      const [held] = await fleet.locks();
      expect(held).toMatchObject({ name: 'reports', replica: 'replica-b', fencingToken: expect.any(Number) });
      expect(held.since).toBeGreaterThan(Date.now() - 5_000);
      expect(await fleet.missed(job.name, { from: t(1), to: t(0) })).toMatchObject({ ran: 1, inProgress: t(0) });
      expect((await fleet.jobs())[0].lastRun).toMatchObject({ replica: 'replica-a', tick: t(1) });
      holding();
      await running;
      expect(await fleet.locks()).toEqual([]);

      await fleet.pause(job.name, 'ops');
      expect(await a.withLock(job.key, job.ttlMs, () => 'plain lock', {})).toEqual({ ran: true, result: 'plain lock' });
      expect(await a.runJob(job.name, job.key, job.ttlMs, () => 'ran')).toBeUndefined();
      await fleet.resume(job.name);
      expect(await a.runJob(job.name, job.key, job.ttlMs, () => 'ran')).toBe('ran');
    });

    it('releases a lock held by a replica that is gone, so another one can take it', async () => {
      const [a, b] = [replica('replica-a'), replica('replica-b')];
      expect(await a.acquireLock('reports', 60_000)).toBe(true);
      expect(await b.acquireLock('reports', 60_000)).toBe(false);
      expect(await fleet.release('reports')).toBe(true);
      expect(await b.acquireLock('reports', 60_000)).toBe(true);
      expect((await fleet.locks())[0].replica).toBe('replica-b');
    });
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
