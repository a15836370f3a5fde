import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { type Browser, chromium, type Page } from 'playwright-core';
import { DistributedLock, DistributedLockModule, DistributedLockService } from '../../src';
import { LockEngine } from '../../src/core';
import { createNamedReplicas, REPLICA } from '../support/create-replica';
import { sleep } from '../support/real-time';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { compileCli, runCli } from '../fleet/cli-process';
import { type DashboardApp, startDashboardApp } from './dashboard-app';

const PREFIX = 'browser:';
/** Runs in the page: the focused element's accessible label, or its id. */
const focusedLabel = (): string => {
  type Focusable = { id: string; getAttribute(name: string): string | null };
  const focused = (globalThis as unknown as { document: { activeElement: Focusable | null } }).document.activeElement;
  return focused?.getAttribute('aria-label') ?? focused?.id ?? '';
};
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Where the screenshots go (the README's comes from here). */
const SCREENSHOTS = join(__dirname, '..', '..', '.screenshots');

@Injectable()
class Reports {
  constructor(@Inject(REPLICA) readonly replica: string) {}

  // No ScheduleModule: the test runs it on a replica, as that replica's scheduler would.
  @Cron('0 0 * * * *', { timeZone: 'UTC' })
  @DistributedLock('browser:hourly', 30_000)
  hourly(): void {}

  @Cron('0 30 2 * * *', { timeZone: 'Europe/Paris' })
  @DistributedLock('browser:nightly', 30_000)
  nightly(): void {
    throw new Error('warehouse unreachable');
  }
}

/** Whoever sends the cookie `operator=<name>` may act; everyone may view. */
const authorize = (request: unknown, action: string): string | false => {
  const cookie = String((request as { headers: Record<string, string | undefined> }).headers.cookie ?? '');
  return /(?:^|;\s*)operator=(\w+)/.exec(cookie)?.[1] ?? (action === 'view' ? 'viewer' : false);
};

describe('the dashboard in a real headless Chromium (real Redis, a replica, the CLI)', () => {
  let redis: TestRedis;
  let replicas: INestApplicationContext[];
  let app: DashboardApp;
  let browser: Browser;
  let buildDir: string;

  beforeAll(async () => {
    redis = await startTestRedis();
    const lock = { url: redis.url, keyPrefix: PREFIX, logger: false as const, manualTriggers: true };
    replicas = await createNamedReplicas(
      ['pod-a'],
      (replicaName) => [DistributedLockModule.forRoot({ ...lock, replicaName })],
      [Reports],
    );
    await replicas[0].get(Reports).hourly();
    await (replicas[0].get(Reports).nightly() as unknown as Promise<void>).catch(() => undefined);
    // The dashboard's app runs no job itself: it shows what the replica did.
    app = await startDashboardApp('express', { ...lock, replicaName: 'dashboard' }, { path: '/locks', authorize });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    buildDir = mkdtempSync(join(tmpdir(), 'dashboard-cli-'));
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await Promise.all((replicas ?? []).map((replica) => replica.close()));
    await redis?.dispose();
    rmSync(buildDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    const fleet = app.nest.get(DistributedLockService).fleet;
    await Promise.all([fleet.resume('Reports.hourly'), fleet.resume('Reports.nightly')]);
  });

  const open = async (operator?: string, options: { bypassCSP?: boolean } = {}): Promise<Page> => {
    const context = await browser.newContext({ ...options, viewport: { width: 1280, height: 900 } });
    if (operator) await context.addCookies([{ name: 'operator', value: operator, url: app.origin }]);
    const page = await context.newPage();
    await page.goto(`${app.origin}/locks`);
    await page.getByRole('cell', { name: 'Reports.hourly', exact: true }).waitFor();
    return page;
  };
  const jobRow = (page: Page, job: string) =>
    page.getByRole('row').filter({ has: page.getByRole('cell', { name: job, exact: true }) });

  it('shows the jobs a real replica ran: schedule and zone, last run with replica and outcome, the live replica', async () => {
    const page = await open();
    const hourly = jobRow(page, 'Reports.hourly');
    await expect(hourly.textContent()).resolves.toMatch(/0 0 \* \* \* \* \(UTC\).*on pod-a: ok in \d+ ms \(schedule\)/);
    await expect(jobRow(page, 'Reports.nightly').textContent()).resolves.toMatch(
      /0 30 2 \* \* \* \(Europe\/Paris\).*on pod-a: error in \d+ ms \(schedule\), warehouse unreachable/,
    );
    await page.getByRole('cell', { name: 'pod-a', exact: true }).waitFor();
    await expect(page.locator('#updated').textContent()).resolves.toMatch(/\(read-only\)$/);
    expect(await page.getByRole('button').count()).toBe(0); // read-only: no action at all
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-read-only.png'), fullPage: true });
    await page.context().close();
  });

  it('pauses a job with a note from the page, and the CLI shows the pause, who and why', async () => {
    const page = await open('alice');
    await page.getByLabel('Note for a pause').fill('warehouse migration');
    await page.getByRole('button', { name: 'Pause Reports.hourly' }).click();
    await page.getByRole('button', { name: 'Resume Reports.hourly' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard.png'), fullPage: true });

    const cli = await runCli(compileCli(buildDir), ['status', '--url', redis.url, '--prefix', PREFIX], {});
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/Reports\.hourly .* by alice, [\d.]+m?s ago: warehouse migration /);

    await page.getByRole('button', { name: 'Resume Reports.hourly' }).click();
    await page.getByRole('button', { name: 'Pause Reports.hourly' }).waitFor();
    await page.context().close();
  });

  it('renders a note holding <script> as text, and runs none of it', async () => {
    await app.nest
      .get(DistributedLockService)
      .fleet.pause('Reports.nightly', 'mallory', '<script>window.injected = 1</script><b>x</b>');
    const page = await open();
    const row = jobRow(page, 'Reports.nightly');
    // The page refreshes by itself: the pause shows within a refresh or two.
    await row.filter({ hasText: 'by mallory' }).waitFor({ timeout: 15_000 });
    await expect(row.textContent()).resolves.toContain('<script>window.injected = 1</script><b>x</b>');
    expect(await page.evaluate(() => (globalThis as { injected?: number }).injected)).toBeUndefined();
    expect(await page.locator('main script, main b').count()).toBe(0);
    await page.context().close();
  });

  it('refuses a cross-site POST (foreign Origin) and an action the viewer is not authorized for', async () => {
    const page = await open();
    const answer = await page.evaluate(async (origin) => {
      const post = (headers: Record<string, string>) =>
        fetch(`${origin}/locks/actions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-dashboard-action': '1', ...headers },
          body: JSON.stringify({ action: 'pause', job: 'Reports.hourly' }),
        }).then(async (response) => [response.status, ((await response.json()) as { error: string }).error]);
      return { unauthorized: await post({}) };
    }, app.origin);
    expect(answer.unauthorized).toEqual([403, 'Not allowed to pause.']);
    // A browser sets Origin itself on a cross-site request: sent here as another site's page would.
    const crossSite = await fetch(`${app.origin}/locks/actions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-dashboard-action': '1',
        origin: 'https://attacker.example',
        cookie: 'operator=alice',
      },
      body: JSON.stringify({ action: 'pause', job: 'Reports.hourly' }),
    });
    expect(crossSite.status).toBe(403);
    await expect(crossSite.json()).resolves.toEqual({
      error: 'Refused: a cross-site request (its Origin is not this host).',
    });
    expect((await app.nest.get(DistributedLockService).fleet.jobs()).every((job) => job.pause === undefined)).toBe(
      true,
    );
    await page.context().close();
  });

  it('has no WCAG A/AA violation axe-core finds, read-only and with every action shown', async () => {
    const axe = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
    for (const operator of [undefined, 'alice']) {
      // axe is injected as a script: the page's own policy (script-src 'self') is bypassed for it only.
      const page = await open(operator, { bypassCSP: true });
      await page.addScriptTag({ content: axe });
      const violations = await page.evaluate(async () => {
        const result = await (
          globalThis as unknown as {
            axe: { run(options: object): Promise<{ violations: { id: string; nodes: unknown[] }[] }> };
          }
        ).axe.run({
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
        });
        return result.violations.map((violation) => `${violation.id} (${violation.nodes.length})`);
      });
      expect(violations).toEqual([]);
      await page.context().close();
    }
  });

  it('reaches every action with Tab, and takes it with Enter', async () => {
    const page = await open('alice');
    // The previous test's pause is gone from Redis: the page shows it within a refresh or two.
    await page.getByRole('button', { name: 'Pause Reports.nightly' }).waitFor({ timeout: 15_000 });
    const buttons = await page
      .getByRole('button')
      .evaluateAll((all) => all.map((button) => button.getAttribute('aria-label')));
    expect(buttons).toEqual(
      expect.arrayContaining(['Pause Reports.hourly', 'Run now Reports.hourly', 'Pause Reports.nightly']),
    );
    const reached: string[] = [];
    for (let i = 0; i < 40 && reached.length < buttons.length + 1; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(focusedLabel);
      if (focused && !reached.includes(focused)) reached.push(focused);
      if (focused === 'Run now Reports.hourly') {
        await page.keyboard.press('Enter');
        await page.locator('#problem').waitFor({ state: 'hidden' });
      }
    }
    expect(reached).toEqual(expect.arrayContaining(buttons as string[]));
    const latestTrigger = async () =>
      (await app.nest.get(DistributedLockService).fleet.runs('Reports.hourly', { limit: 1 }))[0]?.trigger;
    for (let tries = 0; (await latestTrigger()) !== 'manual'; tries++) {
      if (tries > 100) throw new Error('the run started with Enter was never recorded');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await page.context().close();
  });
  it('shows schedule drift: which definition of a job runs it, and which replicas skip it', async () => {
    const engines: LockEngine[] = [];
    try {
      for (const [replicaName, cron] of [
        ['old-pod', '0 0 3 * * *'],
        ['new-pod', '0 0 4 * * *'],
      ]) {
        const engine = new LockEngine({ url: redis.url, keyPrefix: PREFIX, replicaName, logger: false });
        engines.push(engine);
        await engine.waitUntilConnected();
        const job = {
          name: 'Exports.daily',
          key: 'browser:export',
          ttlMs: 30_000,
          cron,
          timeZone: 'UTC',
          utcOffset: null,
        };
        await engine.declareJobs([job]);
        while ((await redis.client().hlen(`${PREFIX}{fleet}:definitions`)) < engines.length) await sleep(20);
      }
      const page = await open();
      const drift = page.locator('#drift-section');
      await drift.waitFor({ state: 'visible', timeout: 15_000 });
      const rows = await drift.getByRole('row').allTextContents();
      expect(rows.slice(1)).toEqual([
        'Exports.daily0 0 4 * * * (UTC)new-podyes (newest)',
        'Exports.daily0 0 3 * * * (UTC)old-podno, skips (drift)',
      ]);
      await page.context().close();
    } finally {
      await Promise.all(engines.map((engine) => engine.close()));
    }
  });
});
