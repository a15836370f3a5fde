import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { LockEngine } from '../../src/core';
import { compileCli } from '../fleet/cli-process';
import { startTestRedis, type TestRedis } from '../support/redis-server';

describe('the standalone dashboard: npx dpa-distributed-lock-cron dashboard (a process, real Redis)', () => {
  jest.setTimeout(30_000);
  let redis: TestRedis;
  let buildDir: string;

  beforeAll(async () => {
    redis = await startTestRedis();
    buildDir = mkdtempSync(join(tmpdir(), 'dashboard-standalone-'));
  });
  afterAll(async () => {
    await redis.dispose();
    rmSync(buildDir, { recursive: true, force: true });
  });

  it('serves the page read-only on 127.0.0.1, refuses every action, and stops on SIGTERM with code 0', async () => {
    const engine = new LockEngine({ url: redis.url, keyPrefix: 'solo:', replicaName: 'pod-a', logger: false });
    await engine.declareJobs([
      { name: 'Reports.hourly', key: 'reports', ttlMs: 60_000, cron: '0 0 * * * *', timeZone: 'UTC', utcOffset: null },
    ]);
    await engine.runJob('Reports.hourly', 'reports', 60_000, () => undefined);
    await engine.close();

    const main = compileCli(buildDir);
    const child = spawn(process.execPath, [main, 'dashboard', '--port', '0', '--url', redis.url, '--prefix', 'solo:'], {
      env: { PATH: process.env.PATH, NODE_PATH: join(__dirname, '..', '..', 'node_modules') },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', () => reject(new Error('the dashboard exited before serving')));
      });
      expect(line).toMatch(/^Dashboard \(read-only\) at http:\/\/127\.0\.0\.1:\d+\/ — Ctrl\+C stops it\.$/);
      const origin = /http:\/\/[\d.:]+/.exec(line)![0];

      expect((await fetch(`${origin}/`)).status).toBe(200);
      const data = (await (await fetch(`${origin}/data`)).json()) as {
        jobs: { name: string; lastRun: { replica: string } }[];
        actions: string[];
      };
      expect(data.jobs.map((job) => [job.name, job.lastRun.replica])).toEqual([['Reports.hourly', 'pod-a']]);
      expect(data.actions).toEqual([]);
      const action = await fetch(`${origin}/actions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-dashboard-action': '1' },
        body: JSON.stringify({ action: 'pause', job: 'Reports.hourly' }),
      });
      expect(action.status).toBe(403);
      expect(JSON.stringify(data)).not.toContain(redis.url.replace(/^redis:\/\//, ''));
      // A page of another site whose name is rebound to 127.0.0.1 sends its own name as Host.
      const port = new URL(origin).port;
      const rebound = await new Promise<number | undefined>((resolve, reject) =>
        request(
          { host: '127.0.0.1', port, path: '/data', headers: { host: `attacker.example:${port}` } },
          (response) => {
            response.resume();
            resolve(response.statusCode);
          },
        )
          .on('error', reject)
          .end(),
      );
      expect(rebound).toBe(421);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
