import { rmSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LockEngine } from '../../src/core';
import { runRecordFields } from '../../src/core/fleet/fleet-records';
import { jobsFirstDeclaredKey, jobsKey, lockKeys } from '../../src/core/keys';
import { freePort, startTestRedis, type TestRedis } from '../support/redis-server';
import { compileCli, runCli } from './cli-process';

const HOUR = 3_600_000;
const hourStart = () => Math.floor(Date.now() / HOUR) * HOUR;

describe('the dpa-distributed-lock-cron command line', () => {
  jest.setTimeout(30_000);
  let redis: TestRedis;
  let buildDir: string;
  let main: string;
  let engines: LockEngine[] = [];
  /** When the test's 60 s lock on `tenant-7` was requested (monotonic ms). */
  let tenantLockRequestedAt = 0;

  const cli = (args: string[], env: Record<string, string> = {}) => runCli(main, args, env);
  const at = (url: string) => ['--url', url, '--prefix', 'app:'];
  const replica = (replicaName: string) => {
    const engine = new LockEngine({ url: redis.url, keyPrefix: 'app:', replicaName, logger: false, fencing: true });
    engines.push(engine);
    return engine;
  };
  const t = (hoursAgo: number) => hourStart() - hoursAgo * HOUR;

  beforeAll(async () => {
    buildDir = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
    main = compileCli(buildDir);
    redis = await startTestRedis();
  });
  beforeEach(async () => {
    await redis.client().flushdb();
    const [a, b] = [replica('replica-a'), replica('replica-b')];
    await a.declareJobs([
      { name: 'Reports.hourly', key: 'reports', ttlMs: 60_000, cron: '0 0 * * * *', timeZone: 'UTC', utcOffset: null },
      { name: 'Billing.perTenant', key: null, ttlMs: 30_000, cron: null, timeZone: null, utcOffset: null },
    ]);
    // The fleet has run the job for a day: its occurrences of the last hours are its own.
    await redis.client().hset(jobsFirstDeclaredKey('app:'), 'Reports.hourly', String(t(24)));
    for (const [engine, tick] of [
      [a, t(4)],
      [b, t(3)],
      [a, t(1)],
    ] as const) {
      await engine.runJob('Reports.hourly', 'reports', 60_000, () => undefined, { tick });
    }
    await expect(
      b.runJob('Reports.hourly', 'reports', 60_000, () => Promise.reject(new Error('disk full')), { tick: t(0) }),
    ).rejects.toThrow('disk full');
    tenantLockRequestedAt = performance.now();
    await b.acquireLock('tenant-7', 60_000);
  });
  afterEach(async () => {
    await Promise.all(engines.map((engine) => engine.close()));
    engines = [];
  });
  afterAll(async () => {
    await redis?.dispose();
    rmSync(buildDir, { recursive: true, force: true });
  });

  it('compiles to a script with a shebang', () => {
    expect(readFileSync(main, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('prints its usage with --help', async () => {
    const run = await cli(['--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Usage: dpa-distributed-lock-cron <command> \[options\]/);
    for (const command of ['status', 'history <job>', 'missed <job>', 'release <key>', 'pause <job>', 'resume <job>']) {
      expect(run.stdout).toContain(`  ${command}`);
    }
  });

  it('status: the jobs, then the locks held, in aligned tables', async () => {
    const run = await cli(['status', ...at(redis.url)]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.trimEnd().split('\n');
    /** The text of `row` from where `title` starts in `header`. */
    const under = (header: string, title: string, row: string) => row.slice(header.indexOf(title));
    expect(lines[0]).toBe('Jobs (key prefix "app:")');
    expect(lines[1]).toMatch(/^JOB +LOCK +SCHEDULE +PAUSED +LAST RUN +REPLICA +OUTCOME$/);
    expect(lines[2]).toMatch(/^Billing\.perTenant +\(per call\) +- +no +- +- +-$/);
    expect(lines[3]).toMatch(
      /^Reports\.hourly +reports +0 0 \* \* \* \* \(UTC\) +no +[\d.]+m?s ago +replica-b +error$/,
    );
    for (const [title, cell] of [
      ['LOCK', 'reports '],
      ['SCHEDULE', '0 0 * * * * (UTC) '],
      ['PAUSED', 'no '],
      ['REPLICA', 'replica-b '],
      ['OUTCOME', 'error'],
    ]) {
      expect(under(lines[1], title, lines[3]).startsWith(cell)).toBe(true);
    }
    expect(lines.slice(4, 6)).toEqual(['', 'Locks held']);
    expect(lines[6]).toMatch(/^LOCK {6}HOLDER {5}SINCE +TTL LEFT {2}FENCING TOKEN$/);
    expect(lines[7]).toMatch(/^tenant-7 {2}replica-b {2}[\d.]+m?s ago +\d+s +\d{16}$/);
    // The TTL left when the command read it: at most 60 s, at least 60 s less the time since the
    // lock was requested (a process started on a busy machine may take more than a second).
    const ttlLeftS = Number(/^(\d+)s /.exec(under(lines[6], 'TTL LEFT', lines[7]))?.[1]);
    expect(ttlLeftS).toBeLessThanOrEqual(60);
    expect(ttlLeftS).toBeGreaterThanOrEqual(Math.floor((60_000 - (performance.now() - tenantLockRequestedAt)) / 1_000));
    expect(under(lines[6], 'FENCING TOKEN', lines[7])).toMatch(/^\d{16}$/);
    expect(lines).toHaveLength(8);
  });

  it('status --json: every field, unset ones as null', async () => {
    const run = await cli(['status', '--json', ...at(redis.url)]);
    expect(run.code).toBe(0);
    const status = JSON.parse(run.stdout);
    expect(status.jobs).toEqual([
      {
        name: 'Billing.perTenant',
        record: expect.objectContaining({ key: null, cron: null }),
        pause: null,
        lastRun: null,
      },
      {
        name: 'Reports.hourly',
        record: expect.objectContaining({ key: 'reports', cron: '0 0 * * * *', declaredBy: 'replica-a' }),
        pause: null,
        lastRun: expect.objectContaining({ replica: 'replica-b', tick: t(0), outcome: 'error', error: 'disk full' }),
      },
    ]);
    expect(status.locks).toEqual([
      {
        name: 'tenant-7',
        key: 'app:lock:{tenant-7}',
        replica: 'replica-b',
        since: expect.any(Number),
        ttlLeftMs: expect.any(Number),
        fencingToken: expect.any(Number),
      },
    ]);
  });

  it('history: the latest runs, newest first, as a table or JSON', async () => {
    const run = await cli(['history', 'Reports.hourly', '--limit', '2', ...at(redis.url)]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Runs of Reports.hourly (lock "reports"), newest first');
    expect(lines[1]).toMatch(/^STARTED +OCCURRENCE +TRIGGER +REPLICA +OUTCOME +DURATION +FENCING TOKEN +ERROR$/);
    expect(lines[2]).toContain(`  ${new Date(t(0)).toISOString().replace('.000Z', 'Z')}  schedule  replica-b  error`);
    expect(lines[2]).toMatch(/disk full$/);
    expect(lines[3]).toContain(`  ${new Date(t(1)).toISOString().replace('.000Z', 'Z')}  schedule  replica-a  ok `);
    expect(lines).toHaveLength(4);

    const json = await cli(['history', 'Reports.hourly', '--json', ...at(redis.url)]);
    expect(JSON.parse(json.stdout).map((entry: { tick: number }) => entry.tick)).toEqual([t(0), t(1), t(3), t(4)]);
  });

  it('history and missed of a job with policies: what started each run, and what catch-up will still run', async () => {
    await replica('replica-a').declareJobs([
      {
        name: 'Reports.policy',
        key: 'reports-policy',
        ttlMs: 60_000,
        cron: '0 0 * * * *',
        timeZone: 'UTC',
        utcOffset: null,
        policies: {
          catchUp: { windowMs: 3 * HOUR, runs: 'latest', max: 10 },
          retry: { attempts: 3, backoffMs: 1_000, maxBackoffMs: 2_000 },
        },
      },
    ]);
    await redis.client().hset(jobsFirstDeclaredKey('app:'), 'Reports.policy', String(t(24)));
    const runs = 'app:lock:{reports-policy}:runs';
    const record = (tick: number, outcome: 'ok' | 'error', trigger: 'schedule' | 'retry', attempt: number) =>
      redis.client().xadd(runs, `${tick + attempt * 1000}-0`, ...runRecordFields({
        job: 'Reports.policy', replica: 'replica-a', tick, startedAt: tick + attempt * 1000, durationMs: 10,
        outcome, error: outcome === 'error' ? 'timeout' : undefined, fencingToken: undefined, trigger, attempt,
      })); // prettier-ignore
    await record(t(5), 'ok', 'schedule', 1);
    await record(t(3), 'error', 'schedule', 1);
    await record(t(3), 'ok', 'retry', 2);

    const history = await cli(['history', 'Reports.policy', ...at(redis.url)]);
    expect(history.stdout).toMatch(/ {2}retry \(attempt 2\) {2}replica-a {2}ok /);
    const json = await cli(['history', 'Reports.policy', '--json', ...at(redis.url)]);
    expect(
      JSON.parse(json.stdout).map((run: { trigger: string; attempt: number }) => [run.trigger, run.attempt]),
    ).toEqual([
      ['retry', 2],
      ['schedule', 1],
      ['schedule', 1],
    ]);

    // t(4), t(2), t(1) and t(0) ran nowhere; catch-up ('latest', 3 h window) will run t(0) only.
    const missed = await cli(['missed', 'Reports.policy', '--since', '5h', ...at(redis.url)]);
    const lines = missed.stdout.trimEnd().split('\n');
    expect(lines[1]).toMatch(/: 5 occurrences, 1 ran, 0 in progress, 3 missed, 1 to be caught up, 0 unknown\.$/);
    expect(lines).toContain('TO BE CAUGHT UP (catchUp: latest, window 3h 0m)');
    const report = JSON.parse(
      (await cli(['missed', 'Reports.policy', '--since', '5h', '--json', ...at(redis.url)])).stdout,
    );
    expect(report).toMatchObject({ missed: [t(4), t(2), t(1)], toCatchUp: [t(0)] });
  });

  it('missed: the occurrences that ran nowhere', async () => {
    const run = await cli(['missed', 'Reports.hourly', '--since', '5h', ...at(redis.url)]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Reports.hourly: 0 0 * * * * (UTC)');
    expect(lines[1]).toMatch(/^From \S+Z to \S+Z: 5 occurrences, 4 ran, 0 in progress, 1 missed, 0 unknown\.$/);
    expect(lines.slice(2)).toEqual(['', 'MISSED (ran on no replica)', expect.stringMatching(/^\S+Z {2}2h \d+m ago$/)]);
    expect(lines[4].startsWith(new Date(t(2)).toISOString().replace('.000Z', 'Z'))).toBe(true);

    const json = await cli(['missed', 'Reports.hourly', '--since', '5h', '--json', ...at(redis.url)]);
    expect(JSON.parse(json.stdout)).toMatchObject({ job: 'Reports.hourly', ran: 4, missed: [t(2)], unknown: [] });
  });

  it('missed: a job that runs every second, without --since, counts from its first declaration', async () => {
    const declaredAt = Date.now() - 180_000; // deployed three minutes ago
    await redis
      .client()
      .hset(
        jobsKey('app:'),
        'Ticks.everySecond',
        JSON.stringify({ key: 'ticks', ttlMs: 1000, cron: '* * * * * *', timeZone: 'UTC', utcOffset: null }),
      );
    await redis.client().hset(jobsFirstDeclaredKey('app:'), 'Ticks.everySecond', String(declaredAt));
    const run = await cli(['missed', 'Ticks.everySecond', '--json', ...at(redis.url)]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const report = JSON.parse(run.stdout) as { from: number; occurrences: number };
    expect(report.from).toBe(declaredAt);
    expect(report.occurrences).toBeGreaterThanOrEqual(180);
    expect(report.occurrences).toBeLessThanOrEqual(200); // seconds since then, not a day's worth
  });

  it('missed: says in which zone it reads a schedule that declares none', async () => {
    await redis
      .client()
      .hset(
        jobsKey('app:'),
        'Reports.local',
        JSON.stringify({ key: 'local', ttlMs: 1000, cron: '0 0 * * * *', timeZone: null, utcOffset: null }),
      );
    const run = await cli(['missed', 'Reports.local', '--since', '2h', ...at(redis.url)], { TZ: 'Asia/Kolkata' });
    expect(run.stdout.split('\n')[2]).toMatch(
      /^The job declares no time zone: read in this machine's \(Asia\/(Kolkata|Calcutta)\); set TZ to the replicas' if it differs\.$/,
    );
    expect(
      JSON.parse((await cli(['missed', 'Reports.local', '--json', ...at(redis.url)], { TZ: 'Asia/Kolkata' })).stdout),
    ).toMatchObject({ missed: expect.arrayContaining([t(1) + HOUR / 2]) });
  });

  it('history of a job that computes its lock name per call: --key names the lock', async () => {
    await replica('replica-c').runJob('Billing.perTenant', 'tenant-9', 30_000, () => undefined);
    const run = await cli(['history', 'Billing.perTenant', '--key', 'tenant-9', '--json', ...at(redis.url)]);
    expect(JSON.parse(run.stdout)).toEqual([
      expect.objectContaining({ job: 'Billing.perTenant', replica: 'replica-c' }),
    ]);
    expect(await cli(['history', 'Billing.perTenant', ...at(redis.url)])).toMatchObject({
      code: 1,
      stderr:
        'dpa-distributed-lock-cron: Job "Billing.perTenant" computes its lock name on each call (a key function): name the lock of the calls to read (`key`, or --key).\n',
    });
  });

  it('missed: refuses a window asked for that holds more occurrences than it checks', async () => {
    await redis
      .client()
      .hset(
        jobsKey('app:'),
        'Pulse.everySecond',
        JSON.stringify({ key: 'pulse', ttlMs: 1000, cron: '* * * * * *', timeZone: 'UTC', utcOffset: null }),
      );
    expect(await cli(['missed', 'Pulse.everySecond', '--since', '24h', ...at(redis.url)])).toMatchObject({
      code: 2,
      stderr:
        'dpa-distributed-lock-cron: the window holds more than 10000 occurrences of Pulse.everySecond; narrow --since (see --help)\n',
    });
    expect((await cli(['missed', 'Pulse.everySecond', '--since', '1m', '--json', ...at(redis.url)])).code).toBe(0);
  });

  it('release: deletes a lock whoever holds it', async () => {
    expect(await cli(['release', 'tenant-7', ...at(redis.url)])).toMatchObject({
      code: 0,
      stdout: 'Released lock "tenant-7": the next occurrence can take it.\n',
    });
    expect(await redis.client().exists('app:lock:{tenant-7}')).toBe(0);
    expect((await cli(['release', 'tenant-7', ...at(redis.url)])).stdout).toBe('Lock "tenant-7" was not held.\n');
    const json = await cli(['release', 'tenant-7', '--json', ...at(redis.url)]);
    expect(JSON.parse(json.stdout)).toEqual({ lock: 'tenant-7', released: false });
  });

  it('pause and resume: every replica skips the job meanwhile', async () => {
    const paused = await cli(['pause', 'Reports.hourly', '--by', 'alice', ...at(redis.url)]);
    expect(paused).toMatchObject({
      code: 0,
      stdout:
        'Paused Reports.hourly on every replica (by alice): runs in progress go on, later ones are skipped until resume.\n',
    });
    expect(JSON.parse((await redis.client().hget(lockKeys('app:', 'reports').paused, 'Reports.hourly'))!)).toEqual({
      by: 'alice',
      at: expect.any(Number),
    });
    expect(await replica('replica-c').runJob('Reports.hourly', 'reports', 60_000, () => 'ran')).toBeUndefined();
    expect((await cli(['status', ...at(redis.url)])).stdout).toMatch(/Reports\.hourly .* by alice, [\d.]+m?s ago /);

    expect(await cli(['resume', 'Reports.hourly', ...at(redis.url)])).toMatchObject({
      code: 0,
      stdout: 'Resumed Reports.hourly on every replica.\n',
    });
    expect(await replica('replica-c').runJob('Reports.hourly', 'reports', 60_000, () => 'ran')).toBe('ran');
    const again = await cli(['resume', 'Reports.hourly', '--json', ...at(redis.url)]);
    expect(JSON.parse(again.stdout)).toEqual({ job: 'Reports.hourly', paused: false, wasPaused: false });
  });

  it('pause --note: the note is kept and shown by status', async () => {
    const note = 'warehouse migration, back at 14:00';
    const paused = await cli(['pause', 'Reports.hourly', '--by', 'alice', '--note', note, '--json', ...at(redis.url)]);
    expect(JSON.parse(paused.stdout)).toEqual({
      job: 'Reports.hourly',
      paused: true,
      wasPaused: false,
      by: 'alice',
      note,
    });

    const status = await cli(['status', ...at(redis.url)]);
    expect(status.stdout).toMatch(/Reports\.hourly .* by alice, [\d.]+m?s ago: warehouse migration, back at 14:00 /);
    const asJson = JSON.parse((await cli(['status', '--json', ...at(redis.url)])).stdout);
    expect(asJson.jobs[1].pause).toEqual({ by: 'alice', at: expect.any(Number), note });

    expect((await cli(['resume', 'Reports.hourly', '--note', 'done', ...at(redis.url)])).stderr).toBe(
      'dpa-distributed-lock-cron: --note does not apply to resume (see --help)\n',
    );
    await cli(['resume', 'Reports.hourly', ...at(redis.url)]);
  });

  it('says which server it reads when neither --url nor a REDIS_* variable says where Redis is', async () => {
    // A prefix no app uses: whatever answers on the default address, nothing of it is read.
    const run = await cli(['status', '--timeout', '500'], { REDIS_KEY_PREFIX: `nobody-${Date.now()}:` });
    expect(run.stderr.split('\n')[0]).toBe(
      'dpa-distributed-lock-cron: no --url and none of REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_SENTINELS, REDIS_CLUSTER_NODES, REDIS_NODES set: reading Redis at redis://localhost:6379/0.',
    );
  });

  it('is configured from the REDIS_* variables without --url', async () => {
    const env = { REDIS_HOST: redis.host, REDIS_PORT: String(redis.port), REDIS_KEY_PREFIX: 'app:' };
    const run = await cli(['history', 'Reports.hourly', '--json'], env);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toHaveLength(4);
    const bad = await cli(['status'], { ...env, REDIS_PORT: 'abc' });
    expect(bad).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'dpa-distributed-lock-cron: REDIS_PORT must be an integer from 1 to 65535, got "abc".\n',
    });
  });

  it.each([
    ['an unknown job', ['history', 'Reports.nope'], 1, 'No job "Reports.nope" is declared under the key prefix "app:". Known jobs: Billing.perTenant, Reports.hourly.'],
    ['a job without schedule', ['missed', 'Billing.perTenant'], 1, 'Job "Billing.perTenant" has no @Cron schedule (an @Interval, @Timeout or unscheduled job), so it has no occurrences to check.'],
    ['pausing a job with a computed lock name', ['pause', 'Billing.perTenant'], 1, 'Job "Billing.perTenant" computes its lock name on each call (a key function): it has no single lock to pause it on.'],
    ['no command', [], 2, 'no command given (one of status, history, missed, release, pause, resume, trigger, forget, dashboard) (see --help)'],
    ['an unknown command', ['stats'], 2, 'unknown command "stats" (one of status, history, missed, release, pause, resume, trigger, forget, dashboard) (see --help)'],
    ['a missing job', ['history'], 2, 'history takes one job name, got none (see --help)'],
    ['a bad --limit', ['history', 'Reports.hourly', '--limit', 'ten'], 2, '--limit must be a positive integer, got "ten" (see --help)'],
    ['a bad --since', ['missed', 'Reports.hourly', '--since', 'yesterday'], 2, '--since must be a duration back from now (90s, 30m, 24h, 7d), an ISO date or "now", got "yesterday" (see --help)'],
    ['an option of another command', ['status', '--limit', '3'], 2, '--limit does not apply to status (see --help)'],
    ['an unknown option', ['status', '--verbose'], 2, 'unknown option "--verbose" (see --help)'],
    ['a URL typed as an operand', ['status', '-url', 'redis://admin:hunter2secret@cache:6379'], 2, 'status takes no argument, got "-url" "redis://admin:***@cache:6379" (see --help)'],
    ['a URL typed as a value', ['history', 'Reports.hourly', '--limit', 'redis://admin:hunter2secret@cache:6379'], 2, '--limit must be a positive integer, got "redis://admin:***@cache:6379" (see --help)'],
  ])('%s: one line on stderr and its exit code', async (_case, args, code, message) => {
    const run = await cli([...args, ...at(redis.url)]);
    expect(run).toEqual({ code, stdout: '', stderr: `dpa-distributed-lock-cron: ${message}\n`, ms: expect.any(Number) });
  }); // prettier-ignore

  describe('when Redis cannot be reached', () => {
    let silent: Server;
    let silentPort: number;
    const sockets: Socket[] = [];
    beforeAll(async () => {
      silent = createServer((socket) => sockets.push(socket)); // accepts connections, never answers
      silentPort = await freePort();
      await new Promise<void>((resolve) => silent.listen(silentPort, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });

    it('exits 1 at once on a closed port, naming the server but never the password', async () => {
      const closedPort = await freePort();
      const run = await cli(['status', '--url', `redis://admin:hunter2-secret@127.0.0.1:${closedPort}/0`]);
      expect(run).toMatchObject({
        code: 1,
        stdout: '',
        stderr: `dpa-distributed-lock-cron: cannot reach Redis at redis://admin@127.0.0.1:${closedPort}/0: connect ECONNREFUSED 127.0.0.1:${closedPort}\n`,
      });
      expect(run.ms).toBeLessThan(5_000);
    });

    it('exits 1 after --timeout on a server that never answers', async () => {
      const run = await cli(['status', '--url', `redis://127.0.0.1:${silentPort}`, '--timeout', '1000']);
      expect(run).toMatchObject({
        code: 1,
        stderr: `dpa-distributed-lock-cron: cannot reach Redis at redis://127.0.0.1:${silentPort}/0: no answer within 1000 ms\n`,
      });
      expect(run.ms).toBeGreaterThanOrEqual(1_000);
      expect(run.ms).toBeLessThan(6_000);
    });
  });

  describe('with a password', () => {
    const PASSWORD = 'pw-Xq7-s3cret';
    let guarded: TestRedis;
    beforeAll(async () => {
      guarded = await startTestRedis(['--requirepass', PASSWORD]);
    });
    afterAll(async () => {
      await guarded?.dispose();
    });

    it('connects with it and never prints it, whether accepted, refused or in a malformed URL', async () => {
      const url = (password: string) => `redis://:${password}@127.0.0.1:${guarded.port}`;
      const accepted = await cli(['status', '--url', url(PASSWORD)]);
      expect(accepted).toMatchObject({
        code: 0,
        stdout: 'No job declared (no key prefix).\n\nNo lock held.\n',
        stderr: '',
      });

      const refused = await cli(['status', '--url', url('wrong-pw-Xq7')]);
      expect(refused).toMatchObject({ code: 1, stdout: '' });
      expect(refused.stderr).toMatch(/^dpa-distributed-lock-cron: cannot reach Redis at .*: WRONGPASS/);
      expect(refused.stderr).not.toContain('wrong-pw-Xq7');

      const malformed = await cli(['status', '--url', `redis://admin:${PASSWORD}@127.0.0.1:port`]);
      expect(malformed).toMatchObject({ code: 2, stdout: '' });
      expect(malformed.stderr).toBe(
        'dpa-distributed-lock-cron: --url must be a redis:// or rediss:// URL such as redis://user:password@host:6379/0, got "redis://admin:***@127.0.0.1:port".\n',
      );

      const fromEnvironment = await cli(['status'], {
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(guarded.port),
        REDIS_PASSWORD: 'wrong-pw-Xq7',
      });
      expect(fromEnvironment.code).toBe(1);
      expect(fromEnvironment.stderr).not.toContain('wrong-pw-Xq7');
    });
  });

  it('declares nothing itself: the jobs hash is what the replicas wrote', async () => {
    await cli(['status', ...at(redis.url)]);
    expect(Object.keys(await redis.client().hgetall(jobsKey('app:'))).sort()).toEqual([
      'Billing.perTenant',
      'Reports.hourly',
    ]);
  });
});
