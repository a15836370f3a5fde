import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, type INestApplicationContext, type Type } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import {
  currentLock,
  DistributedLock,
  DistributedLockModule,
  DistributedLockService,
  type LockEvent,
  LockEngine,
} from '../../src';
import { driftOf, exchangePresence, PRESENCE_LIVE_S } from '../../src/core/fleet/definition-drift';
import { createReplica, REPLICA } from '../support/create-replica';
import { eventually, sleep } from '../support/real-time';
import { recordCommands } from '../support/record-commands';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { compileCli, runCli } from './cli-process';

/** Every run of either version: which version and replica, and the occurrence it served. */
const runs: { version: string; replica: string; tick: number }[] = [];

/** Version 1 of the app runs `Reports.export` every second; version 2 every other second (a changed schedule). */
function reportsVersion(version: string, cron: string): Type {
  @Injectable()
  class Reports {
    constructor(@Inject(REPLICA) readonly replica: string) {}

    @Cron(cron)
    @DistributedLock('drift:export', 5_000)
    export(): void {
      runs.push({ version, replica: this.replica, tick: currentLock()!.tick! });
    }
  }
  return Reports;
}

describe('schedule drift: two versions of one app side by side during a rolling deploy (real Redis)', () => {
  jest.setTimeout(60_000);
  let redis: TestRedis;
  const apps = new Map<string, INestApplicationContext>();
  const events: (LockEvent & { replica: string })[] = [];

  const start = async (replica: string, reports: Type) => {
    const module = DistributedLockModule.forRoot({
      url: redis.url,
      replicaName: replica,
      logger: false,
      onEvent: (event) => events.push({ ...event, replica }),
    });
    apps.set(
      replica,
      await createReplica([ScheduleModule.forRoot(), module], [reports, { provide: REPLICA, useValue: replica }]),
    );
  };

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await Promise.all([...apps.values()].map((app) => app.close()));
    await redis.dispose();
  });

  it('the newest definition owns the occurrences while both run: after one exchange (3 s) only the new schedule runs', async () => {
    const v1 = reportsVersion('v1', '* * * * * *');
    await start('old-1', v1);
    await start('old-2', v1);
    await eventually(() => runs.length >= 2, 5_000);

    await start('new-1', reportsVersion('v2', '*/2 * * * * *'));
    await sleep(4_000); // one exchange (3 s) for the old replicas to learn of the newer definition
    runs.length = 0;
    events.length = 0;
    await sleep(6_000);

    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.every((run) => run.version === 'v2' && run.replica === 'new-1')).toBe(true);
    expect(runs.every((run) => (run.tick / 1000) % 2 === 0)).toBe(true); // only the new schedule's occurrences
    const drifted = events.filter((event) => event.type === 'skipped' && event.reason === 'drift');
    expect(new Set(drifted.map((event) => event.replica))).toEqual(new Set(['old-1', 'old-2']));

    const [drift] = await apps.get('new-1')!.get(DistributedLockService).fleet.drift();
    expect(drift).toMatchObject({
      job: 'Reports.export',
      definitions: [
        { cron: '*/2 * * * * *', replicas: ['new-1'] },
        { cron: '* * * * * *', replicas: ['old-1', 'old-2'] },
      ],
    });
    expect(drift.owner).toBe(drift.definitions[0].fingerprint);
    // What the health check reads: the same drift, within acquireTimeoutMs.
    expect((await apps.get('old-1')!.get(DistributedLockService).fleetNotices())?.drift).toEqual([drift]);

    const buildDir = mkdtempSync(join(tmpdir(), 'drift-cli-'));
    try {
      const status = await runCli(compileCli(buildDir), ['status', '--url', redis.url], {});
      expect(status.stdout).toContain(
        [
          'Schedule drift: live replicas run different definitions of 1 job',
          'Reports.export  */2 * * * * *  on new-1  runs it (the newest definition)',
          'Reports.export  * * * * * *  on old-1, old-2  skips it (drift)',
        ].join('\n'),
      );
    } finally {
      rmSync(buildDir, { recursive: true, force: true });
    }
  });

  it('a replica that shuts down withdraws its definition at once; once the new one is gone, the old definition runs again', async () => {
    await Promise.all(['old-1', 'old-2'].map((name) => apps.get(name)!.close()));
    apps.delete('old-1');
    apps.delete('old-2');
    expect(await apps.get('new-1')!.get(DistributedLockService).fleet.drift()).toEqual([]);

    await start('old-3', reportsVersion('v1', '* * * * * *'));
    await sleep(4_000);
    expect(runs.filter((run) => run.replica === 'old-3')).toEqual([]); // v2 is live and newer: v1 skips
    await apps.get('new-1')!.close();
    apps.delete('new-1');
    runs.length = 0;
    await eventually(() => runs.some((run) => run.replica === 'old-3'), 8_000);
    expect(runs.every((run) => run.version === 'v1')).toBe(true);
  });
});

describe('which definition owns a job: the newest first declared among live replicas', () => {
  const presence = (replica: string, fingerprint: string, atS: number) => [
    replica,
    `${JSON.stringify({ replica, jobs: { 'J.run': fingerprint } })}|${atS}`,
  ];
  const definition = (fingerprint: string, firstDeclaredAt: number) => [
    `J.run|${fingerprint}`,
    JSON.stringify({ firstDeclaredAt, cron: fingerprint, timeZone: null, key: 'j', ttlMs: 1 }),
  ];

  it('names the newest definition the owner, and leaves out replicas not seen for PRESENCE_LIVE_S', () => {
    const definitions = [...definition('aaa', 1_000), ...definition('bbb', 2_000)];
    const both = [...presence('old', 'aaa', 100), ...presence('new', 'bbb', 100)];
    expect(driftOf(105, both, definitions)).toEqual([
      expect.objectContaining({
        job: 'J.run',
        owner: 'bbb',
        definitions: [expect.objectContaining({ fingerprint: 'bbb' }), expect.objectContaining({ fingerprint: 'aaa' })],
      }),
    ]);
    expect(
      driftOf(
        100 + PRESENCE_LIVE_S + 1,
        [...presence('old', 'aaa', 100), ...presence('new', 'bbb', 100 + PRESENCE_LIVE_S)],
        definitions,
      ),
    ).toEqual([]);
    expect(driftOf(105, [...presence('a', 'aaa', 100), ...presence('b', 'aaa', 101)], definitions)).toEqual([]);
  });
});

describe("a replica's presence, published every 3 s (real Redis)", () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('is sent by the script SHA once Redis has the script, and still works after Redis lost it', async () => {
    const client = redis.client();
    const presence = { instanceId: 'i-1', replica: 'r-1', jobs: { 'J.run': 'aaa' }, declared: new Map() };
    const exchange = async () => {
      expect(await exchangePresence(client, 'presence-sha:', presence)).toEqual([]);
    };
    const commandsOf = async (work: () => Promise<void>) =>
      (await recordCommands(redis.url, 'presence-sha:', work))
        .filter((command) => command.source === 'client')
        .map((command) => command.words[0]);

    await exchange(); // the first exchange caches the script
    expect(await commandsOf(exchange)).toEqual(['evalsha']);
    await client.script('FLUSH'); // as a restarted Redis would have lost it
    await exchange();
    expect(await commandsOf(exchange)).toEqual(['evalsha']);
  });

  it("is one EVALSHA from a replica's first exchange on a fresh Redis: the script is loaded with the connection's own", async () => {
    const fresh = await startTestRedis(); // no script cached yet
    const engine = new LockEngine({ url: fresh.url, keyPrefix: 'presence-first:', logger: false });
    try {
      await engine.waitUntilConnected();
      const job = { name: 'J.run', key: 'j', ttlMs: 1_000, cron: '* * * * * *', timeZone: 'UTC', utcOffset: null };
      const sent = await recordCommands(fresh.url, 'presence-first:', async () => {
        await engine.declareJobs([job]);
        while ((await fresh.client().hlen('presence-first:{fleet}:replicas')) === 0) await sleep(5);
      });
      const scripts = sent.filter((command) => command.source === 'client' && command.words[0].startsWith('eval'));
      expect(scripts.map((command) => command.words[0])).toEqual(['evalsha']);
    } finally {
      await engine.close();
      await fresh.dispose();
    }
  });
});
