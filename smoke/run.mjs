#!/usr/bin/env node
// Consumer smoke tests: packs the library, installs the tarball into a fresh NestJS 10 (CommonJS),
// 11 (CommonJS) and 12 (ESM) app, compiles each with TypeScript and runs it with plain `node`
// against a redis-server of its own; and into a fresh Nest 11 app whose own Jest (ts-jest) runs its
// tests, the README's testing example among them. See smoke/README.md.
//
//   node smoke/run.mjs                  all apps
//   node smoke/run.mjs --only 12        one app (or --only 10,12, --only 11-jest)
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
/** The apps, by the name `--only` takes: `node` apps run `dist/main.js`, `jest` apps run their own Jest. */
const APPS = {
  10: { kind: 'node' },
  11: { kind: 'node' },
  12: { kind: 'node' },
  '11-jest': { kind: 'jest' },
};
/**
 * What the Jest app installs, each with its own `npm install` as a user types it: npm picks every
 * version, except what docs/compatibility.md tells a Jest user on Node 20 to pin
 * (`@nestjs/schedule` 6 or lower, `@nestjs/config` 4 or lower, TypeScript below 7 for ts-jest).
 */
const JEST_APP_INSTALLS = {
  dependencies: [
    '@nestjs/common@11',
    '@nestjs/core@11',
    '@nestjs/testing@11',
    '@nestjs/schedule@6',
    '@nestjs/config@4',
    'reflect-metadata',
    'rxjs',
    'ioredis',
  ],
  // ioredis 6.1's declarations import redis-errors, which ships no types of its own: a strict
  // consumer (skipLibCheck off) needs @types/redis-errors, as docs/compatibility.md says.
  devDependencies: ['jest', 'ts-jest', '@types/jest', 'typescript@<7', '@types/node', '@types/redis-errors'],
};
/** The documentation's files that the Jest app runs as written (`// <file>` on a block's first line). */
const README_TEST_FILES = ['app.module.ts', 'my.service.ts', 'my.service.spec.ts', 'fleet.spec.ts'];
/** The spec files the Jest app must run: its own, and the README's. */
const JEST_APP_SPECS = [
  'cron-with-testing-module.spec.ts',
  'real-redis-fake-timers.spec.ts',
  ...README_TEST_FILES.filter((file) => file.endsWith('.spec.ts')),
];
/** What Jest prints when something kept the process alive after the run; either fails the app. */
const JEST_EXIT_WARNINGS = [
  'did not exit one second after the test run',
  'A worker process has failed to exit gracefully',
];
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
const REPORTED_JEST_PACKAGES = ['@nestjs/testing', 'jest', 'ts-jest', '@types/jest', '@types/node'];
const LIMITS = {
  build: 180_000,
  pack: 120_000,
  install: 600_000,
  compile: 180_000,
  app: 60_000,
  exitAfterResult: 10_000,
  jest: 300_000,
  jestExitAfterResult: 15_000,
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
  const options = { apps: Object.keys(APPS), ioredis: undefined, legacyPeerDeps: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--only') {
      // `12` or `nest12`, `11-jest` or `nest11-jest`
      options.apps =
        value()
          ?.split(',')
          .map((app) => app.trim().replace(/^nest/, '')) ?? [];
      const unknown = options.apps.filter((app) => !Object.hasOwn(APPS, app));
      if (options.apps.length === 0 || unknown.length > 0) {
        usage(`--only takes ${Object.keys(APPS).join(', ')} (comma-separated), got ${JSON.stringify(options.apps)}`);
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
    `${problem}\nUsage: node smoke/run.mjs [--only 10|11|12|11-jest[,…]] [--ioredis <version>] [--legacy-peer-deps]`,
  );
  process.exit(2);
}

/**
 * Runs a command to completion, capturing its output; rejects never, `timedOut` says if it was killed.
 * `onOutput(stdout, stderr, child)` is called on every chunk of either stream.
 */
function run(command, args, { cwd, env = process.env, timeoutMs, onOutput } = {}) {
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
      onOutput?.(stdout, stderr, child);
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      onOutput?.(stdout, stderr, child);
    });
    child.once('error', (error) => (stderr += `\n${error.message}`));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

class StepError extends Error {
  constructor(step, outcome, detail, lines = 40) {
    const output = `${outcome.stdout}\n${outcome.stderr}`
      .split('\n')
      .filter((line) => line.trim() && !line.startsWith('npm warn Unknown user config'))
      .slice(-lines)
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

function installedVersions(appDir, names = REPORTED_PACKAGES) {
  return Object.fromEntries(
    names.map((name) => {
      const manifest = join(appDir, 'node_modules', name, 'package.json');
      return [name, existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')).version : 'missing'];
    }),
  );
}

/** Creates, installs, compiles and runs the app of one major; throws with the failing step's output. */
async function smokeNodeApp(major, tarball, options, report) {
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
      onOutput: (stdout, _stderr, child) => {
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

/**
 * The ```ts blocks of the README and of docs/testing.md whose first line names one of `files`
 * (`// my.service.spec.ts`, the convention of scripts/check-readme.mjs), by file name, each exactly
 * as written: the app's files are the README's quick start, its tests those of the testing page.
 */
function readmeFiles(files) {
  const found = new Map();
  for (const page of ['README.md', join('docs', 'testing.md')]) {
    const lines = readFileSync(join(REPO_DIR, page), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const fence = /^(\s*)```(?:ts|typescript)\s*$/.exec(lines[i]);
      if (!fence) continue;
      const body = [];
      for (i++; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i].slice(fence[1].length));
      const file = /^\/\/\s*(\S+\.ts)\s*$/.exec(body[0] ?? '')?.[1];
      if (!file || !files.includes(file)) continue;
      if (found.has(file)) throw new Error(`${page}: a second ts block named // ${file}`);
      found.set(file, `${body.join('\n')}\n`);
    }
  }
  const missing = files.filter((file) => !found.has(file));
  if (missing.length > 0) {
    throw new Error(`README.md and docs/testing.md have no ts block whose first line is // ${missing.join(', // ')}`);
  }
  return found;
}

/** Passed and failed tests per spec file, from Jest's `--json` output. */
function jestSummary(results) {
  const suites = Object.fromEntries(
    results.testResults.map((suite) => {
      const count = (status) => suite.assertionResults.filter((test) => test.status === status).length;
      const file = suite.name.split('/').pop();
      return [file, suite.status === 'passed' ? `${count('passed')} passed` : `FAILED (${count('failed')} failed)`];
    }),
  );
  return { tests: `${results.numPassedTests}/${results.numTotalTests} passed`, suites };
}

/**
 * Creates a fresh Nest 11 app, installs what its Jest tests need as a user would (one `npm install`
 * for the dependencies, one for the dev dependencies, npm picking the versions), adds the README's
 * testing example and runs the app's own Jest, without --forceExit, against a redis-server of its own.
 */
async function smokeJestApp(name, tarball, options, report) {
  const appDir = join(WORK_DIR, `nest${name}`);
  rmSync(appDir, { recursive: true, force: true });
  cpSync(join(APPS_DIR, `nest${name}`), appDir, { recursive: true });
  for (const [file, source] of readmeFiles(README_TEST_FILES)) writeFileSync(join(appDir, 'src', file), source);

  const npmFlags = options.legacyPeerDeps ? [...NPM_FLAGS, '--legacy-peer-deps'] : NPM_FLAGS;
  const dependencies = JEST_APP_INSTALLS.dependencies.map((spec) =>
    spec === 'ioredis' && options.ioredis ? `ioredis@${options.ioredis}` : spec,
  );
  const installs = [
    ['npm install', ['install', ...npmFlags, `../${tarball.split('/').pop()}`, ...dependencies]],
    ['npm install -D', ['install', ...npmFlags, '-D', ...JEST_APP_INSTALLS.devDependencies]],
  ];
  report.timings.install = 0;
  for (const [stepName, args] of installs) {
    report.timings.install += (await step(stepName, 'npm', args, { cwd: appDir, timeoutMs: LIMITS.install })).ms;
  }
  report.versions = installedVersions(appDir, [...REPORTED_PACKAGES, ...REPORTED_JEST_PACKAGES]);

  // What the tests type-check against; ts-jest reports the same diagnostics, test by test.
  const compile = await step(
    'tsc --noEmit',
    join(appDir, 'node_modules', '.bin', 'tsc'),
    ['--noEmit', '-p', 'tsconfig.json'],
    {
      cwd: appDir,
      timeoutMs: LIMITS.compile,
    },
  );
  report.timings.compile = compile.ms;

  const redis = await startRedis();
  try {
    let resultSeenAt;
    const resultsFile = join(appDir, 'jest-results.json');
    const jest = await run(
      'node',
      [join('node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--json', `--outputFile=${resultsFile}`],
      {
        cwd: appDir,
        env: { ...appEnvironment(redis.port), REDIS_URL: `redis://127.0.0.1:${redis.port}` },
        timeoutMs: LIMITS.jest,
        onOutput: (_stdout, stderr, child) => {
          if (resultSeenAt !== undefined || !/^Ran all test suites/m.test(stderr)) return;
          resultSeenAt = Date.now();
          // Jest has printed its summary: whatever the tests left open (a socket, a timer) keeps it alive.
          setTimeout(() => {
            if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
          }, LIMITS.jestExitAfterResult).unref();
        },
      },
    );
    report.timings.run = jest.ms;
    const outputFile = join(appDir, 'jest-output.txt');
    writeFileSync(outputFile, `${jest.stdout}\n${jest.stderr}`);
    // Every problem at once: a failed test does not hide a process that then stays alive.
    const problems = [];
    const results = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : undefined;
    if (results) {
      report.result = jestSummary(results);
      const ran = results.testResults.map((suite) => suite.name.split('/').pop());
      const notRun = JEST_APP_SPECS.filter((file) => !ran.includes(file));
      if (notRun.length > 0) problems.push(`did not run ${notRun.join(', ')}`);
      if (!results.success) problems.push('tests failed');
    } else {
      problems.push('wrote no results');
    }
    if (resultSeenAt !== undefined && jest.signal === 'SIGKILL') {
      problems.push(`did not exit by itself within ${LIMITS.jestExitAfterResult / 1000} s of printing its results`);
    }
    for (const warning of JEST_EXIT_WARNINGS) if (jest.stderr.includes(warning)) problems.push(`warned "${warning}"`);
    if (problems.length > 0 || jest.code !== 0) {
      throw new StepError('jest', jest, [...problems, `full output in ${outputFile}`].join('; '), 150);
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
  for (const app of options.apps) {
    const report = { app: `nest${app}`, timings: {} };
    reports.push(report);
    const appStarted = Date.now();
    try {
      const smokeTest = APPS[app].kind === 'jest' ? smokeJestApp : smokeNodeApp;
      await smokeTest(app, tarball, options, report);
      report.ok = true;
    } catch (error) {
      report.ok = false;
      report.error = error.message;
    }
    report.timings.total = Date.now() - appStarted;
    const { install, compile, run: runMs, total } = report.timings;
    const versions = report.versions
      ? Object.entries(report.versions)
          .filter(([name]) => name !== 'dpa-distributed-lock-cron')
          .map(([name, version]) => `${name}@${version}`)
          .join(' ')
      : '';
    console.log(
      `${report.app}: ${report.ok ? 'PASS' : 'FAIL'} in ${seconds(total)} ` +
        `(install ${seconds(install)}, tsc ${seconds(compile)}, run ${seconds(runMs)}) ${versions}`,
    );
    if (report.result) console.log(`  result: ${JSON.stringify(report.result)}`);
    if (report.stderr) console.log(`  stderr:\n${indent(report.stderr)}`);
    if (!report.ok) console.log(`  error: ${indent(report.error).trimStart()}`);
  }
  const failed = reports.filter((report) => !report.ok).map((report) => report.app);
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
