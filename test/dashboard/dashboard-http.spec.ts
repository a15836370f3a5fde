import { Injectable } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { DistributedLock, DistributedLockService } from '../../src';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { type DashboardApp, startDashboardApp } from './dashboard-app';

@Injectable()
class Reports {
  // No ScheduleModule: the test calls it, as the scheduler would.
  @Cron('0 0 * * * *', { timeZone: 'UTC' })
  @DistributedLock('dashboard:hourly', 30_000)
  hourly(): void {}
}

/** Whoever sends the cookie `operator=<name>` may act; everyone may view. */
const authorize = (request: unknown, action: string): string | false => {
  const cookie = String((request as { headers: Record<string, string | undefined> }).headers.cookie ?? '');
  const operator = /(?:^|;\s*)operator=(\w+)/.exec(cookie)?.[1];
  return operator ?? (action === 'view' ? 'viewer' : false);
};

describe.each(['express', 'fastify'] as const)(
  'the dashboard mounted in a %s app (real Redis, real HTTP)',
  (platform) => {
    let redis: TestRedis;
    let app: DashboardApp;
    const prefix = `dash-${platform}:`;

    beforeAll(async () => {
      redis = await startTestRedis();
      app = await startDashboardApp(
        platform,
        { url: redis.url, keyPrefix: prefix, replicaName: 'pod-a' },
        { path: '/ops/locks', authorize },
        [Reports],
      );
      await app.nest.get(Reports).hourly();
    });
    afterAll(async () => {
      await app.close();
      await redis.dispose();
    });

    const post = (body: object, headers: Record<string, string> = {}) =>
      fetch(`${app.origin}/ops/locks/actions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-dashboard-action': '1',
          cookie: 'operator=alice',
          ...headers,
        },
        body: JSON.stringify(body),
      });

    it('serves the page with a strict content policy, its script and style from the app itself', async () => {
      const page = await fetch(`${app.origin}/ops/locks`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      const html = await page.text();
      expect(html).toContain('<script src="/ops/locks/app.js" defer></script>');
      expect(html).not.toMatch(/https?:\/\//);
      expect((await fetch(`${app.origin}/ops/locks/app.js`)).headers.get('content-type')).toBe(
        'text/javascript; charset=utf-8',
      );
    });

    it('shows the job a replica ran, with its last run, and the actions this viewer may take', async () => {
      const data = (await (
        await fetch(`${app.origin}/ops/locks/data`, { headers: { cookie: 'operator=alice' } })
      ).json()) as { jobs: unknown[]; actions: string[] };
      expect(data.jobs).toEqual([
        expect.objectContaining({
          name: 'Reports.hourly',
          key: 'dashboard:hourly',
          cron: '0 0 * * * *',
          timeZone: 'UTC',
          lastRun: expect.objectContaining({ replica: 'pod-a', outcome: 'ok' }),
          pause: null,
        }),
      ]);
      expect(data.actions).toEqual(['pause', 'resume', 'release', 'trigger', 'fill']);
      const anonymous = (await (await fetch(`${app.origin}/ops/locks/data`)).json()) as { actions: string[] };
      expect(anonymous.actions).toEqual([]);
    });

    it('pauses with a note when authorized, recording who; refuses a foreign Origin, a missing header and an unauthorized viewer', async () => {
      expect(
        (await post({ action: 'pause', job: 'Reports.hourly', note: 'db work' }, { origin: 'https://evil.example' }))
          .status,
      ).toBe(403);
      const noHeader = await fetch(`${app.origin}/ops/locks/actions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: 'operator=alice' },
        body: JSON.stringify({ action: 'pause', job: 'Reports.hourly' }),
      });
      expect(noHeader.status).toBe(403);
      expect((await post({ action: 'pause', job: 'Reports.hourly' }, { cookie: '' })).status).toBe(403);
      const fleet = app.nest.get(DistributedLockService).fleet;
      expect((await fleet.jobs())[0].pause).toBeUndefined();

      // Behind a proxy that names the app by another host: the Origin matches X-Forwarded-Host.
      const proxied = { origin: 'https://ops.example.com', 'x-forwarded-host': 'ops.example.com' };
      expect((await post({ action: 'resume', job: 'Reports.hourly' }, proxied)).status).toBe(200);
      const done = await post({ action: 'pause', job: 'Reports.hourly', note: 'db work' }, { origin: app.origin });
      expect(done.status).toBe(200);
      expect((await fleet.jobs())[0].pause).toEqual({ by: 'alice', at: expect.any(Number), note: 'db work' });
      expect((await post({ action: 'resume', job: 'Reports.hourly' })).status).toBe(200);
      expect((await fleet.jobs())[0].pause).toBeUndefined();
    });
  },
);
