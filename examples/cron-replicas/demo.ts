import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { startLocalRedis } from './local-redis';
import { parseReplicaMessage, type ReadyMessage, type RunMessage } from './replica-messages';
import { type TallySummary, TickTally } from './tick-tally';

/**
 * Runs three replicas of an example app as separate node processes against one Redis, prints
 * which replica ran each one-second cron tick, then a summary. Exits non-zero when a tick ran on
 * more than one replica.
 *
 * Usage: node examples/dist/cron-replicas/demo.js [--seconds N] [--app nest|fastify] [--dashboard]
 * With --dashboard, the replicas keep running after the watched ticks, and the operators'
 * dashboard is served (read-only) at http://127.0.0.1:8700/ until Ctrl-C.
 * Redis: REDIS_URL or REDIS_HOST (+ REDIS_PORT) when set, otherwise a redis-server started here.
 */

/** The replica apps the launcher can run. */
const APPS = {
  nest: {
    script: join(__dirname, 'replica.js'),
    description:
      "examples/cron-replicas: @Cron(EVERY_SECOND) + @DistributedLock('demo:every-second', 5000), 200–400 ms of work per run.",
  },
  fastify: {
    script: join(__dirname, '..', 'fastify-node-cron', 'replica.js'),
    description:
      "examples/fastify-node-cron: Fastify + node-cron every second, guarded by LockEngine.withLock('fastify:every-second', 5000, job, { tick: cronTick() }), 200–400 ms of work per run.",
  },
} as const;
type AppName = keyof typeof APPS;

const REPLICA_COUNT = 3;
const DEFAULT_SECONDS = 15;
const MAX_SECONDS = 3600;
const BOOT_TIMEOUT_MS = 60_000;
/** A run reports 0.2–0.4 s after its tick; a tick with no report after this long is missed. */
const SETTLE_MS = 2_000;
const STOP_GRACE_MS = 3_000;
const DASHBOARD_PORT = 8700;

class Interrupted extends Error {}

interface Replica {
  readonly name: string;
  readonly process: ChildProcess;
}

/** Every process this launcher started, stopped by PID at the end, on Ctrl-C and on failure. */
const started: { name: string; process: ChildProcess }[] = [];
let stopping = false;
let tally: TickTally | undefined;
/** Ticks before this one (epoch ms) have been settled: ran, duplicated or missed. */
let settledUntil = 0;

let abort: (error: Error) => void = () => undefined;
const aborted = new Promise<never>((_, reject) => (abort = reject));
aborted.catch(() => undefined); // observed through Promise.race below

async function main(): Promise<void> {
  const { seconds, app, dashboard } = parseArguments(process.argv.slice(2));
  withDashboard = dashboard;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => abort(new Interrupted(signal)));
  }
  // Should the launcher die anyway, take its children with it.
  process.once('exit', () => started.forEach(({ process: child }) => kill(child, 'SIGKILL')));

  let outcome: 'completed' | 'interrupted' | 'failed' = 'completed';
  try {
    await Promise.race([run(seconds, app), aborted]);
    if (dashboard) await serveDashboard();
  } catch (error) {
    outcome = error instanceof Interrupted ? 'interrupted' : 'failed';
    console.error(outcome === 'interrupted' ? '\nInterrupted.' : `\nDemo failed: ${(error as Error).message}`);
  }
  stopping = true;
  await stopReplicas();

  if (!tally || (settledUntil <= tally.firstTick && tally.latestRunTick() === undefined)) {
    await stopServers();
    process.exit(outcome === 'interrupted' ? 130 : 1);
  }
  // When stopped early, also count the ticks up to the latest one that ran, though not yet settled.
  const summary = tally.summarize(Math.max(settledUntil, (tally.latestRunTick() ?? 0) + 1000));
  printSummary(summary, outcome === 'completed' ? '' : `, ${outcome}`);
  if (outcome === 'completed') await printFleet();
  await stopServers();
  if (outcome !== 'completed') process.exit(outcome === 'interrupted' ? 130 : 1);
  process.exit(summary.duplicates > 0 ? 1 : 0);
}

/** What the operators' CLI says of the fleet now: `status`, then each job's last runs. */
async function printFleet(): Promise<void> {
  const status = await cli(['status', '--json']);
  const jobs = (JSON.parse(status) as { jobs: { name: string }[] }).jobs.map((job) => job.name);
  console.log(`\n$ npx dpa-distributed-lock-cron status\n${await cli(['status'])}`);
  for (const job of jobs) {
    console.log(
      `$ npx dpa-distributed-lock-cron history ${job} --limit 5\n${await cli(['history', job, '--limit', '5'])}`,
    );
  }
}

/** Runs the package's CLI against the demo's Redis; rejects with its stderr when it fails. */
function cli(args: string[]): Promise<string> {
  const main = join(dirname(require.resolve('dpa-distributed-lock-cron/package.json')), 'dist', 'cli', 'main.js');
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [main, ...args],
      { env: { ...process.env, ...redisEnv }, timeout: 15_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`the CLI failed (${args.join(' ')}): ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}

/** The Redis variables the replicas (and the CLI) are given. */
let redisEnv: NodeJS.ProcessEnv = {};
/** `--dashboard`: replicas take manual triggers (so the dashboard lists them live), and keep running. */
let withDashboard = false;

/** Serves the dashboard over the demo's Redis while the replicas keep running; ends on Ctrl-C. */
async function serveDashboard(): Promise<void> {
  const main = join(dirname(require.resolve('dpa-distributed-lock-cron/package.json')), 'dist', 'cli', 'main.js');
  const child = spawn(process.execPath, [main, 'dashboard', '--port', String(DASHBOARD_PORT)], {
    env: { ...process.env, ...redisEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push({ name: 'dashboard', process: child });
  createInterface({ input: child.stdout! }).on('line', (line) => console.log(`\n${line} The replicas keep running.`));
  createInterface({ input: child.stderr! }).on('line', (line) => console.error(`[dashboard] ${line}`));
  child.once('exit', (code) => {
    if (!stopping) abort(new Error(`the dashboard exited (code ${code}); is port ${DASHBOARD_PORT} taken?`));
  });
  try {
    await aborted;
  } catch (error) {
    if (!(error instanceof Interrupted)) throw error; // Ctrl-C is how this mode ends
  }
}

async function run(seconds: number, app: AppName): Promise<void> {
  redisEnv = await prepareRedis();
  const replicas = Array.from({ length: REPLICA_COUNT }, (_, i) =>
    startReplica(`replica-${i + 1}`, APPS[app].script, redisEnv),
  );
  console.log(`Starting ${REPLICA_COUNT} replicas of ${APPS[app].description}`);
  const ready = await withTimeout(Promise.all(replicas.map(whenReady)), BOOT_TIMEOUT_MS, 'replicas to boot');
  for (const message of ready) {
    if (!message.connected) throw new Error(`${message.replica} could not connect to Redis (see its warning above).`);
    console.log(`  ${message.replica} ready (pid ${message.pid})`);
  }

  const firstTick = Math.ceil((Date.now() + 500) / 1000) * 1000;
  tally = new TickTally(firstTick, firstTick + seconds * 1000);
  settledUntil = firstTick;
  console.log(`Watching ${seconds} ticks from ${clock(firstTick)}:\n`);
  await settleTicks(tally);
}

/** The Redis variables for the replicas: the caller's Redis when set, otherwise a redis-server started now. */
async function prepareRedis(): Promise<NodeJS.ProcessEnv> {
  const url = process.env.REDIS_URL?.trim();
  if (url) {
    console.log(`Redis: REDIS_URL (${withoutCredentials(url)})`);
    return {};
  }
  const host = process.env.REDIS_HOST?.trim();
  if (host) {
    console.log(`Redis: REDIS_HOST=${host} REDIS_PORT=${process.env.REDIS_PORT?.trim() || '6379'}`);
    return {};
  }
  const redis = await startLocalRedis((child) => started.push({ name: 'redis-server', process: child }));
  redis.process.once('exit', (code, signal) => {
    if (!stopping) abort(new Error(`redis-server exited unexpectedly (${signal ?? `code ${code}`}).`));
  });
  console.log(`Redis: started redis-server on ${redis.host}:${redis.port} (pid ${redis.process.pid})`);
  // This server has no password or TLS: do not pass the caller's.
  return {
    REDIS_HOST: redis.host,
    REDIS_PORT: String(redis.port),
    REDIS_USERNAME: '',
    REDIS_PASSWORD: '',
    REDIS_TLS: '',
  };
}

function startReplica(name: string, script: string, redisEnv: NodeJS.ProcessEnv): Replica {
  const child = spawn(process.execPath, [script], {
    // The replica's name is also its name in the fleet's records (lock holders, run history).
    env: {
      ...process.env,
      ...redisEnv,
      REPLICA_NAME: name,
      DISTRIBUTED_LOCK_REPLICA_NAME: name,
      ...(withDashboard && { DISTRIBUTED_LOCK_MANUAL_TRIGGERS: 'true' }),
    },
    // stdin stays open: the replica exits when it closes. Its own process group: Ctrl-C reaches
    // the launcher only, which then stops every replica by PID.
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  started.push({ name, process: child });
  child.once('error', (error) => abort(new Error(`${name} could not start: ${error.message}`)));
  child.once('exit', (code, signal) => {
    if (!stopping) abort(new Error(`${name} exited unexpectedly (${signal ?? `code ${code}`}).`));
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const message = parseReplicaMessage(line);
    if (!message) console.log(`[${name}] ${line}`);
    else if (message.type === 'run') printRun(message);
    else child.emit('ready', message);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => console.error(`[${name}] ${line}`));
  return { name, process: child };
}

function whenReady(replica: Replica): Promise<ReadyMessage> {
  return new Promise((resolve) => replica.process.once('ready', resolve));
}

function printRun(run: RunMessage): void {
  const runs = tally?.record(run);
  if (!runs) return; // a tick before or after the observed window
  const offset = run.startedAt - run.tick;
  let line =
    `tick ${clock(run.tick)}  ran on ${run.replica}  ` +
    `(started ${offset >= 0 ? '+' : ''}${offset} ms, ${run.endedAt - run.startedAt} ms of work)`;
  if (runs.length > 1)
    line += `  DUPLICATE, also ran on ${runs
      .slice(0, -1)
      .map((r) => r.replica)
      .join(', ')}`;
  console.log(line);
}

/** Resolves once every tick of the window has had SETTLE_MS to report; prints missed ticks on the way. */
function settleTicks(window: TickTally): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      while (settledUntil < window.endTick && settledUntil + SETTLE_MS <= Date.now()) {
        if (window.runsOf(settledUntil).length === 0)
          console.log(`tick ${clock(settledUntil)}  MISSED, no replica ran it`);
        settledUntil += 1000;
      }
      if (settledUntil >= window.endTick || stopping) {
        clearInterval(timer);
        resolve();
      }
    }, 100);
    aborted.catch(() => clearInterval(timer));
  });
}

function printSummary(summary: TallySummary, note: string): void {
  const perReplica = [...summary.byReplica.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, runs]) => `${name} ${runs}`)
    .join(', ');
  console.log(`
Summary (${REPLICA_COUNT} replicas, ${summary.ticks} one-second ticks${note})
  ticks observed  ${summary.ticks}
  executions      ${summary.executions}${perReplica ? `  (${perReplica})` : ''}
  duplicates      ${summary.duplicates}  (ticks executed more than once)
  missed ticks    ${summary.missed}`);
  if (summary.duplicates > 0) console.log(`\nFAIL: ${summary.duplicates} tick(s) ran on more than one replica.`);
  else if (summary.missed === 0) console.log('\nEach tick ran on exactly one replica.');
}

/** Stops the replicas (they release their locks); the redis-server goes last, after the CLI has read it. */
async function stopReplicas(): Promise<void> {
  await Promise.all(started.filter(({ name }) => name !== 'redis-server').map(({ process: child }) => stop(child)));
}

async function stopServers(): Promise<void> {
  await Promise.all(started.filter(({ name }) => name === 'redis-server').map(({ process: child }) => stop(child)));
  const pids = started.map(({ name, process: child }) => `${name} ${child.pid}`).join(', ');
  if (pids) console.log(`Stopped ${pids}.`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  kill(child, 'SIGTERM');
  const timer = setTimeout(() => kill(child, 'SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    // already gone
  }
}

function parseArguments(args: string[]): { seconds: number; app: AppName; dashboard: boolean } {
  let seconds = DEFAULT_SECONDS;
  let app: AppName = 'nest';
  let dashboard = false;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split('=', 2);
    if (flag === '--dashboard') {
      dashboard = true;
      continue;
    }
    if (flag !== '--seconds' && flag !== '--app') usage(`unknown argument ${args[i]}`);
    const value = inline ?? args[++i];
    if (flag === '--seconds') {
      seconds = Number(value);
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_SECONDS) {
        usage(`--seconds must be a whole number from 1 to ${MAX_SECONDS}, got ${value}`);
      }
    } else if (flag === '--app') {
      if (!(value in APPS)) usage(`--app must be one of ${Object.keys(APPS).join(', ')}, got ${value}`);
      app = value as AppName;
    }
  }
  return { seconds, app, dashboard };
}

function usage(problem: string): never {
  console.error(
    `${problem}\nUsage: npm run demo -- [--seconds N] [--app nest|fastify] [--dashboard]   (default ${DEFAULT_SECONDS} s, nest)`,
  );
  process.exit(2);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}.`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Local wall-clock time, HH:MM:SS. */
function clock(epochMs: number): string {
  const date = new Date(epochMs);
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'unparsable URL';
  }
}

void main();
