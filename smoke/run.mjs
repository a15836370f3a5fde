#!/usr/bin/env node
// Consumer smoke tests: packs the library, installs the tarball into a fresh NestJS 10 (CommonJS),
// 11 (CommonJS) and 12 (ESM) app, compiles each with TypeScript and runs it with plain `node`
// against a redis-server of its own. See smoke/README.md.
//
//   node smoke/run.mjs                  all majors
//   node smoke/run.mjs --only 12        one major (or --only 10,12)
//   node smoke/run.mjs --ioredis 6      install that ioredis version instead of the template's
//   node smoke/run.mjs --legacy-peer-deps  passed to npm install (e.g. to try a peer outside our range)
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SMOKE_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_DIR = dirname(SMOKE_DIR);
const WORK_DIR = join(SMOKE_DIR, '.work');
const APPS_DIR = join(SMOKE_DIR, 'apps');
const MAJORS = ['10', '11', '12'];
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline'];
const REPORTED_PACKAGES = [
  'dpa-distributed-lock-cron',
  '@nestjs/core',
  '@nestjs/common',
  '@nestjs/schedule',
  '@nestjs/config',
  'ioredis',
  'reflect-metadata',
  'rxjs',
  'typescript',
];
const LIMITS = {
  build: 180_000,
  pack: 120_000,
  install: 600_000,
  compile: 180_000,
  app: 60_000,
  exitAfterResult: 10_000,
};

/** Children still running (redis-server, npm, the apps), killed by PID however this script ends. */
const children = new Set();
process.once('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killChildren();
    process.exit(130);
  });
}

function killChildren() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
}

function parseArguments(argv) {
  const options = { majors: MAJORS, ioredis: undefined, legacyPeerDeps: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--only') {
      options.majors =
        value()
          ?.split(',')
          .map((major) => major.trim()) ?? [];
      const unknown = options.majors.filter((major) => !MAJORS.includes(major));
      if (options.majors.length === 0 || unknown.length > 0) {
        usage(`--only takes ${MAJORS.join(', ')} (comma-separated), got ${JSON.stringify(options.majors)}`);
      }
    } else if (flag === '--ioredis') {
      options.ioredis = value();
      if (!options.ioredis) usage('--ioredis needs a version or range, e.g. --ioredis 6');
    } else if (flag === '--legacy-peer-deps' && inline === undefined) {
      options.legacyPeerDeps = true;
    } else {
      usage(`unknown argument ${argv[i]}`);
    }
  }
  return options;
}

function usage(problem) {
  console.error(
    `${problem}\nUsage: node smoke/run.mjs [--only 10|11|12[,…]] [--ioredis <version>] [--legacy-peer-deps]`,
  );
  process.exit(2);
}

/** Runs a command to completion, capturing its output; rejects never, `timedOut` says if it was killed. */
function run(command, args, { cwd, env = process.env, timeoutMs, onStdout } = {}) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', (error) => (stderr += `\n${error.message}`));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

class StepError extends Error {
  constructor(step, outcome, detail) {
    const output = `${outcome.stdout}\n${outcome.stderr}`
      .split('\n')
      .filter((line) => line.trim() && !line.startsWith('npm warn Unknown user config'))
      .slice(-40)
      .join('\n');
    const how = outcome.timedOut ? 'timed out' : `exited with ${outcome.code ?? outcome.signal}`;
    super(`${step} ${how}${detail ? ` (${detail})` : ''}\n${output}`);
  }
}

async function step(name, command, args, options) {
  const outcome = await run(command, args, options);
  if (outcome.timedOut || outcome.code !== 0) throw new StepError(name, outcome);
  return outcome;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server of our own on a free loopback port, without persistence. */
async function startRedis() {
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    try {
      await new Promise((resolve, reject) => {
        let output = '';
        const fail = (error) => {
          clearTimeout(timer);
          reject(error);
        };
        const timer = setTimeout(() => fail(new Error(`redis-server did not start in 10 s:\n${output}`)), 10_000);
        child.once('error', fail);
        child.once('exit', (code) => fail(new Error(`redis-server exited with ${code}:\n${output}`)));
        child.stderr.on('data', (chunk) => (output += chunk));
        child.stdout.on('data', (chunk) => {
          output += chunk;
          if (output.includes('Ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      child.stdout.resume();
      return {
        port,
        stop() {
          children.delete(child);
          if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
        },
      };
    } catch (error) {
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
      children.delete(child);
      if (error.code === 'ENOENT') throw new Error('redis-server is not on PATH (apt-get install redis-server)');
      lastError = error; // most likely the port was taken in between; try another
    }
  }
  throw lastError;
}

/** Builds the library and packs it the way `npm publish` would; returns the tarball's path. */
async function packLibrary() {
  await step('npm run build', 'npm', ['run', 'build'], { cwd: REPO_DIR, timeoutMs: LIMITS.build });
  for (const file of readdirSync(WORK_DIR)) if (file.endsWith('.tgz')) rmSync(join(WORK_DIR, file));
  // prepack would build a second time; the build above is the one being tested.
  const packed = await step('npm pack', 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', WORK_DIR], {
    cwd: REPO_DIR,
    timeoutMs: LIMITS.pack,
  });
  const [{ filename, files }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
  return { tarball: join(WORK_DIR, filename), fileCount: files.length };
}

/** The app's environment: this machine's, minus any Redis or lock setting, plus our Redis. */
function appEnvironment(redisPort) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(REDIS_|DISTRIBUTED_LOCK_)/.test(name)),
  );
  return { ...env, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redisPort) };
}

function installedVersions(appDir) {
  return Object.fromEntries(
    REPORTED_PACKAGES.map((name) => {
      const manifest = join(appDir, 'node_modules', name, 'package.json');
      return [name, existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).version : 'missing'];
    }),
  );
}

/** Creates, installs, compiles and runs the app of one major; throws with the failing step's output. */
async function smokeTest(major, tarball, options, report) {
  const appDir = join(WORK_DIR, `nest${major}`);
  rmSync(appDir, { recursive: true, force: true });
  cpSync(join(APPS_DIR, 'shared'), appDir, { recursive: true });
  cpSync(join(APPS_DIR, `nest${major}`), appDir, { recursive: true });
  const manifestPath = join(appDir, 'package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  manifest.dependencies['dpa-distributed-lock-cron'] = `file:../${tarball.split('/').pop()}`;
  if (options.ioredis) manifest.dependencies.ioredis = options.ioredis;
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

  const npmFlags = options.legacyPeerDeps ? [...NPM_FLAGS, '--legacy-peer-deps'] : NPM_FLAGS;
  const install = await step('npm install', 'npm', ['install', ...npmFlags], {
    cwd: appDir,
    timeoutMs: LIMITS.install,
  });
  report.timings.install = install.ms;
  report.versions = installedVersions(appDir);

  const compile = await step('tsc', join(appDir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], {
    cwd: appDir,
    timeoutMs: LIMITS.compile,
  });
  report.timings.compile = compile.ms;

  const redis = await startRedis();
  try {
    let resultSeenAt;
    const app = await run('node', ['dist/main.js'], {
      cwd: appDir,
      env: appEnvironment(redis.port),
      timeoutMs: LIMITS.app,
      onStdout: (stdout, child) => {
        if (resultSeenAt !== undefined || !stdout.includes('SMOKE_RESULT ')) return;
        resultSeenAt = Date.now();
        // The apps are closed once the result is printed: an open handle would keep the process alive.
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
        }, LIMITS.exitAfterResult).unref();
      },
    });
    report.timings.run = app.ms;
    const line = app.stdout.split('\n').find((text) => text.startsWith('SMOKE_RESULT '));
    report.result = line ? JSON.parse(line.slice('SMOKE_RESULT '.length)) : undefined;
    if (app.stderr.trim()) report.stderr = app.stderr.trim();
    if (!report.result) throw new StepError('node dist/main.js', app, 'printed no SMOKE_RESULT line');
    if (!report.result.ok) throw new StepError('node dist/main.js', app, report.result.error);
    if (app.code !== 0) {
      const detail =
        resultSeenAt && app.signal === 'SIGKILL' ? 'did not exit by itself within 10 s of closing its apps' : undefined;
      throw new StepError('node dist/main.js', app, detail);
    }
  } finally {
    redis.stop();
  }
}

function seconds(ms) {
  return ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`;
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  mkdirSync(WORK_DIR, { recursive: true });
  const started = Date.now();
  console.log(`node ${process.version}; packing the library…`);
  const { tarball, fileCount } = await packLibrary();
  console.log(`packed ${tarball.split('/').pop()} (${fileCount} files) in ${seconds(Date.now() - started)}`);

  const reports = [];
  for (const major of options.majors) {
    const report = { major, timings: {} };
    reports.push(report);
    const majorStarted = Date.now();
    try {
      await smokeTest(major, tarball, options, report);
      report.ok = true;
    } catch (error) {
      report.ok = false;
      report.error = error.message;
    }
    report.timings.total = Date.now() - majorStarted;
    const { install, compile, run: runMs, total } = report.timings;
    const versions = report.versions
      ? Object.entries(report.versions)
          .filter(([name]) => name !== 'dpa-distributed-lock-cron')
          .map(([name, version]) => `${name}@${version}`)
          .join(' ')
      : '';
    console.log(
      `nest${major}: ${report.ok ? 'PASS' : 'FAIL'} in ${seconds(total)} ` +
        `(install ${seconds(install)}, tsc ${seconds(compile)}, run ${seconds(runMs)}) ${versions}`,
    );
    if (report.result) console.log(`  result: ${JSON.stringify(report.result)}`);
    if (report.stderr) console.log(`  stderr:\n${indent(report.stderr)}`);
    if (!report.ok) console.log(`  error: ${indent(report.error).trimStart()}`);
  }
  const failed = reports.filter((report) => !report.ok).map((report) => `nest${report.major}`);
  console.log(
    `${failed.length === 0 ? 'all passed' : `FAILED: ${failed.join(', ')}`} (${seconds(Date.now() - started)} in total)`,
  );
  process.exitCode = failed.length === 0 ? 0 : 1;
}

function indent(text) {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

main().catch((error) => {
  console.error(error instanceof StepError ? error.message : error);
  killChildren();
  process.exitCode = 1;
});
