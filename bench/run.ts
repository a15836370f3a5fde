/**
 * The benchmark suite: every contender against one private redis-server, interleaved over
 * repetitions. Run with `npm run bench` (flags after `--`, see `--help`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import * as prettier from 'prettier';
import { ContenderProcess } from './contender-process';
import { COMPARE_AND_DELETE, CONTENDERS, type Contender, TTL_MS } from './contenders';
import {
  accountRedis,
  medianAccount,
  captureCommands,
  elide,
  keysOfName,
  type MonitoredCommand,
  type RedisAccount,
} from './monitor-capture';
import {
  LuaScript,
  ACQUIRE,
  ACQUIRE_JOB,
  CANCEL_ACQUISITION,
  EXTEND_IF_OWNER,
  RELEASE_AND_RECORD,
  RELEASE_IF_OWNER,
} from '../src/core/redis/scripts';
import { pinToCpu, startBenchRedis } from './redis-server';
import { renderMarkdown, type BenchResults } from './report';
import { type ContentionSample, LatencyRecorder, type LatencySample } from './scenarios';
import { median, quantile } from './stats';

// Compiled to bench/.work/bench/run.js.
const BENCH_DIR = resolve(__dirname, '..', '..');
/** The decorator contenders whose heap is followed over a million calls. */
const HEAP_CONTENDERS = ['decorator', 'decorator-fixed', 'decorator-all'];
const SCENARIOS = ['latency', 'throughput', 'contention', 'memory', 'heap', 'monitor'] as const;

const HELP = `npm run bench -- [flags]
  --reps N             repetitions, contenders interleaved in each (default 5)
  --seq-ops N          timed sequential acquire+release per contender per rep (default 2000)
  --tp-ops N           acquire+release per contender per rep in the throughput scenario (default 10000)
  --workers N          concurrent workers in the throughput scenario (default 64)
  --replicas N         replicas (connections) racing in the contention scenario (default 50)
  --rounds N           contention rounds per contender, split across reps (default 100)
  --held N             locks held at once in the memory scenario (default 10000)
  --decorator-calls N  decorated calls in the heap scenario (default 1000000)
  --only a,b           contenders to run (ids: ${CONTENDERS.map((c) => c.id).join(', ')}); the floor always runs
  --scenarios a,b      scenarios to run (${SCENARIOS.join(', ')})
  --quick              a short smoke run (2 reps, small counts)
  --out PATH           where to write PATH.json and PATH.md (default bench/results/latest)
  --pin MODE           auto (default): latency with redis-server and the contender on one core,
                       the other scenarios split (redis-server on the last core, contenders on the
                       others); split or same for every scenario; off: no pinning`;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      'seq-ops': { type: 'string' },
      'tp-ops': { type: 'string' },
      workers: { type: 'string' },
      replicas: { type: 'string' },
      rounds: { type: 'string' },
      held: { type: 'string' },
      'decorator-calls': { type: 'string' },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      pin: { type: 'string', default: 'auto' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const quick = values.quick;
  const int = (name: keyof typeof values, normal: number, short: number): number => {
    const raw = values[name];
    const value = raw === undefined ? (quick ? short : normal) : Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
    return value;
  };
  const only = values.only?.split(',').map((id) => id.trim());
  const unknown = only?.filter((id) => !CONTENDERS.some((c) => c.id === id));
  if (unknown?.length) throw new Error(`Unknown contender(s): ${unknown.join(', ')}`);
  const scenarios = new Set(values.scenarios?.split(',').map((s) => s.trim()) ?? SCENARIOS);
  for (const s of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`Unknown scenario ${s}`);
  }
  return {
    reps: int('reps', 5, 2),
    seqOps: int('seq-ops', 2000, 300),
    seqWarmup: quick ? 50 : 200,
    tpOps: int('tp-ops', 10_000, 2500),
    workers: int('workers', 64, 64),
    replicas: int('replicas', 50, 50),
    rounds: int('rounds', 100, 10),
    held: int('held', 10_000, 1000),
    decoratorCalls: int('decorator-calls', 1_000_000, 50_000),
    contenders: CONTENDERS.filter((c) => c.id === 'floor' || !only || only.includes(c.id)),
    scenarios,
    out: resolve(values.out ?? join(BENCH_DIR, 'results', 'latest')),
    pin: parsePin(values.pin),
  };
}

type Options = ReturnType<typeof parseOptions>;

type PinMode = 'auto' | 'split' | 'same' | 'off';

function parsePin(value: string | undefined): PinMode {
  if (value !== 'auto' && value !== 'split' && value !== 'same' && value !== 'off') {
    throw new Error('--pin must be auto, split, same or off');
  }
  return cpus().length < 2 && value !== 'same' ? 'off' : value;
}

/**
 * Pins redis-server and the contenders' processes. `same`: all on CPU 0, so a round trip hands the
 * CPU over instead of waking another core, and the client's own cost shows in full; `split`:
 * redis-server alone on the last CPU, as a server of its own. Pinned, no process flips between
 * those two regimes mid-run, which on a small shared machine otherwise dominates the noise.
 */
function pinAll(mode: 'split' | 'same' | 'off', redisPid: number, children: readonly ContenderProcess[]): boolean {
  if (mode === 'off') return false;
  const last = cpus().length - 1;
  if (!pinToCpu(redisPid, mode === 'same' ? 0 : last)) return false;
  children.forEach((child, i) => pinToCpu(child.pid, mode === 'same' ? 0 : i % last));
  return true;
}

const log = (message: string): void => void process.stderr.write(`${message}\n`);

/** The contenders in a different order each repetition, so none always runs first or last. */
function rotated<T>(items: readonly T[], rep: number): T[] {
  const shift = rep % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** Median over repetitions of a contender's value divided by the floor's value in the same repetition. */
function pairedRatio(values: number[], floor: number[]): number {
  return median(values.map((value, rep) => value / floor[rep]));
}

/**
 * The commit the library's source was compiled from, and its files that differed from it: the
 * checkout may be shared, and a run of someone's edit in progress should say so.
 */
function source(): { commit: string; modified: string[] } {
  const git = (...args: string[]): string =>
    execFileSync('git', ['-C', BENCH_DIR, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const modified = git('status', '--porcelain', '--', '../src')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.slice(3));
    return { commit: git('rev-parse', 'HEAD'), modified };
  } catch {
    return { commit: 'unknown', modified: [] };
  }
}

function machine(redisVersion: string) {
  const cpuInfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuInfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    redis: redisVersion,
    os: `${process.platform} ${release()}`,
    loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const startedAt = Date.now();
  const redis = await startBenchRedis();
  log(`redis-server ${redis.version} pid ${redis.pid} on port ${redis.port}`);
  const admin = redis.client();
  const results: BenchResults = {
    date: new Date().toISOString(),
    machine: machine(redis.version),
    source: source(),
    config: {
      reps: options.reps,
      seqOps: options.seqOps,
      seqWarmup: options.seqWarmup,
      tpOps: options.tpOps,
      workers: options.workers,
      replicas: options.replicas,
      rounds: options.rounds,
      held: options.held,
      decoratorCalls: options.decoratorCalls,
      ttlMs: TTL_MS,
    },
    pinning: { latency: 'off', others: 'off' },
    contenders: options.contenders.map(({ id, label, kind, note }) => ({ id, label, kind, note })),
    latency: {},
    throughput: {},
    contention: {},
    memory: {},
  };
  const processes: ContenderProcess[] = [];
  let current: 'split' | 'same' | 'off' = options.pin === 'auto' ? 'split' : options.pin;
  const pin = (mode: 'split' | 'same' | 'off'): 'split' | 'same' | 'off' => {
    current = pinAll(mode, redis.pid, processes) ? mode : 'off';
    return current;
  };
  const spawn = (id: string): ContenderProcess => {
    const child = ContenderProcess.spawn(id, redis.url, redis.pid, log);
    processes.push(child);
    pin(current);
    return child;
  };
  try {
    const has = (scenario: (typeof SCENARIOS)[number]): boolean => options.scenarios.has(scenario);
    const running = options.contenders.map((c) => ({ ...c, process: spawn(c.id) }));
    await Promise.all(running.map((c) => c.process.call('open', {})));

    if (has('latency')) {
      results.pinning.latency = pin(options.pin === 'auto' ? 'same' : options.pin);
      await runLatency(options, running, results);
    }
    results.pinning.others = pin(options.pin === 'auto' ? 'split' : options.pin);
    if (has('throughput')) await runThroughput(options, running, results);
    results.telemetrySeen = await telemetrySeen(running);
    if (has('contention')) await runContention(options, running, results);
    if (has('monitor')) results.monitor = await runMonitor(options, redis.port, admin, running);
    await Promise.all(running.map((c) => c.process.close()));

    // Fresh processes for the memory scenarios, so earlier runs leave nothing in their heaps.
    if (has('memory')) await runMemory(options, spawn, results);
    for (const id of has('heap') ? HEAP_CONTENDERS : []) {
      if (!options.contenders.some((c) => c.id === id)) continue;
      log(`heap: ${options.decoratorCalls} decorated calls, ${id}`);
      const child = spawn(id);
      const sample = await child.call('heap', { calls: options.decoratorCalls, concurrency: 64, slices: 10 });
      (results.decoratorHeap ??= {})[id] = sample;
      await child.close();
    }
  } finally {
    await Promise.all(processes.map((child) => child.close().catch(() => undefined)));
    await redis.stop();
  }
  results.machine.loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));
  results.durationSec = Math.round((Date.now() - startedAt) / 1000);

  mkdirSync(resolve(options.out, '..'), { recursive: true });
  // Written as the repository's Prettier settings would, so `npm run format` leaves them alone.
  const format = async (file: string, text: string): Promise<string> =>
    prettier.format(text, { ...(await prettier.resolveConfig(file)), filepath: file });
  writeFileSync(`${options.out}.json`, await format(`${options.out}.json`, JSON.stringify(results)));
  const markdown = await format(`${options.out}.md`, renderMarkdown(results));
  writeFileSync(`${options.out}.md`, markdown);
  process.stdout.write(markdown);
  const chart = spawnSync(process.execPath, [join(BENCH_DIR, 'render-chart.mjs'), `${options.out}.json`], {
    stdio: 'inherit',
  });
  if (chart.status !== 0) throw new Error('render-chart.mjs failed');
}

type Running = Contender & { process: ContenderProcess };

/**
 * Each repetition runs every contender's share in slices, round-robin (A B C … A B C …), so a
 * slow spell of the shared machine falls on all of them alike.
 */
async function interleaved<T>(
  contenders: readonly T[],
  rep: number,
  slices: number,
  run: (contender: T, slice: number) => Promise<void>,
): Promise<void> {
  for (let slice = 0; slice < slices; slice++) {
    for (const contender of rotated(contenders, rep + slice)) await run(contender, slice);
  }
}

const SEQ_SLICE = 100;
const TP_SLICE = 2500;

function summary<T>(perRep: Map<string, T[]>, rep: number, show: (sample: T) => string): string {
  return [...perRep].map(([id, samples]) => `${id} ${show(samples[rep])}`).join(', ');
}

function push<T>(map: Map<string, T[]>, id: string, value: T): void {
  map.set(id, [...(map.get(id) ?? []), value]);
}

async function runLatency(options: Options, running: Running[], results: BenchResults) {
  const perRep = new Map<string, LatencySample[]>();
  const slices = Math.max(1, Math.round(options.seqOps / SEQ_SLICE));
  for (let rep = 0; rep < options.reps; rep++) {
    const recorders = new Map(running.map((c) => [c.id, new LatencyRecorder()]));
    for (const c of rotated(running, rep))
      await c.process.call('warmup', { key: `seq:${c.id}`, ops: options.seqWarmup });
    await interleaved(running, rep, slices, async (c, slice) => {
      const ops = Math.round(((slice + 1) * options.seqOps) / slices) - Math.round((slice * options.seqOps) / slices);
      recorders.get(c.id)!.add(await c.process.call('latency', { key: `seq:${c.id}`, ops }));
    });
    for (const [id, recorder] of recorders) push(perRep, id, recorder.result());
    log(`latency rep ${rep + 1}/${options.reps}: ${summary(perRep, rep, (s) => `${s.p50Us.toFixed(0)}µs`)}`);
  }
  const floor = perRep.get('floor')!;
  const ratio = (samples: LatencySample[], pick: (s: LatencySample) => number): number =>
    pairedRatio(samples.map(pick), floor.map(pick));
  for (const [id, samples] of perRep) {
    results.latency[id] = {
      p50Us: median(samples.map((s) => s.p50Us)),
      p99Us: median(samples.map((s) => s.p99Us)),
      clientCpuUs: median(samples.map((s) => s.clientCpuUs)),
      serverCpuUs: median(samples.map((s) => s.serverCpuUs)),
      p50Ratio: ratio(samples, (s) => s.p50Us),
      p99Ratio: ratio(samples, (s) => s.p99Us),
      clientCpuRatio: ratio(samples, (s) => s.clientCpuUs),
      reps: samples,
    };
  }
}

async function runThroughput(options: Options, running: Running[], results: BenchResults) {
  const perRep = new Map<string, number[]>();
  const slices = Math.max(1, Math.round(options.tpOps / TP_SLICE));
  const sliceOps = Math.round(options.tpOps / slices);
  const args = (c: Running, ops: number) => ({ keyPrefix: `tp:${c.id}`, ops, workers: options.workers });
  for (const c of running) await c.process.call('throughput', args(c, 1000)); // warm-up
  for (let rep = 0; rep < options.reps; rep++) {
    const seconds = new Map<string, number>();
    await interleaved(running, rep, slices, async (c) => {
      const taken = await c.process.call('throughput', args(c, sliceOps));
      seconds.set(c.id, (seconds.get(c.id) ?? 0) + taken);
    });
    for (const [id, taken] of seconds) push(perRep, id, (slices * sliceOps) / taken);
    log(`throughput rep ${rep + 1}/${options.reps}: ${summary(perRep, rep, (s) => `${s.toFixed(0)}/s`)}`);
  }
  const floor = perRep.get('floor')!;
  for (const [id, samples] of perRep) {
    results.throughput[id] = { opsPerSec: median(samples), ratio: pairedRatio(samples, floor), reps: samples };
  }
}

async function runContention(options: Options, running: Running[], results: BenchResults) {
  const racers = running.filter((c) => c.lockClient);
  for (const c of racers) {
    await c.process.call('openReplicas', { count: options.replicas });
    await c.process.call('race', { key: `race:${c.id}`, rounds: 3 }); // warm-up: scripts cached, connections used
  }
  const perRep = new Map<string, ContentionSample[]>();
  const roundsPerRep = Math.max(1, Math.round(options.rounds / options.reps));
  for (let rep = 0; rep < options.reps; rep++) {
    const samples = new Map<string, ContentionSample[]>();
    await interleaved(racers, rep, roundsPerRep, async (c) => {
      push(samples, c.id, await c.process.call('race', { key: `race:${c.id}`, rounds: 1 }));
    });
    for (const [id, rounds] of samples) push(perRep, id, mergeRounds(rounds));
    log(
      `contention rep ${rep + 1}/${options.reps}: ${summary(perRep, rep, (s) => `p50 ${quantile(s.decisionsMs, 0.5).toFixed(2)}ms bad ${s.badRounds}`)}`,
    );
  }
  const floorP50 = perRep.get('floor')!.map((s) => quantile(s.decisionsMs, 0.5));
  for (const [id, samples] of perRep) {
    const merged = mergeRounds(samples);
    results.contention[id] = {
      replicas: options.replicas,
      rounds: merged.rounds,
      badRounds: merged.badRounds,
      winnersPerRound: merged.winnersPerRound,
      decisionP50Ms: quantile(merged.decisionsMs, 0.5),
      decisionP99Ms: quantile(merged.decisionsMs, 0.99),
      p50Ratio: pairedRatio(
        samples.map((s) => quantile(s.decisionsMs, 0.5)),
        floorP50,
      ),
    };
  }
}

function mergeRounds(samples: ContentionSample[]): ContentionSample {
  const merged: ContentionSample = { rounds: 0, badRounds: 0, winnersPerRound: {}, decisionsMs: [] };
  for (const sample of samples) {
    merged.rounds += sample.rounds;
    merged.badRounds += sample.badRounds;
    merged.decisionsMs.push(...sample.decisionsMs);
    for (const [count, rounds] of Object.entries(sample.winnersPerRound)) {
      merged.winnersPerRound[count] = (merged.winnersPerRound[count] ?? 0) + rounds;
    }
  }
  return merged;
}

/** What the OpenTelemetry SDK of each contender that has one recorded: proof that it did the work measured. */
async function telemetrySeen(running: Running[]): Promise<BenchResults['telemetrySeen']> {
  const seen: NonNullable<BenchResults['telemetrySeen']> = {};
  for (const c of running) {
    const sample = await c.process.call('telemetrySeen', {});
    if (sample) seen[c.id] = sample;
  }
  return Object.keys(seen).length ? seen : undefined;
}

async function runMemory(options: Options, spawn: (id: string) => ContenderProcess, results: BenchResults) {
  for (const contender of options.contenders) {
    if (!contender.lockClient) continue;
    const child = spawn(contender.id);
    try {
      results.memory[contender.id] = await child.call('memory', { count: options.held, concurrency: 64 });
    } finally {
      await child.close();
    }
    const m = results.memory[contender.id];
    log(
      `memory ${contender.id}: ${m.redisBytesPerLock.toFixed(0)} B/lock in Redis, ${m.residualKeysPerLock} keys left per lock`,
    );
  }
}

/** The scripts a capture may call by SHA, by name: the library's, and the floor's compare-and-delete. */
function scriptNames(): Map<string, string> {
  const named: Record<string, LuaScript> = {
    ACQUIRE,
    ACQUIRE_JOB,
    RELEASE_IF_OWNER,
    RELEASE_AND_RECORD,
    EXTEND_IF_OWNER,
    CANCEL_ACQUISITION,
    'compare-and-delete': new LuaScript(COMPARE_AND_DELETE),
  };
  return new Map(Object.entries(named).map(([name, script]) => [script.sha, name]));
}

/** Cycles per contender whose bytes and Redis time are counted (enough for a run history to reach its cap). */
const ACCOUNTED_CYCLES = 500;
/** Samples of Redis's accounting per contender, interleaved: its figures are their medians. */
const ACCOUNTED_SAMPLES = 5;

/**
 * Captures with MONITOR the commands of one warm acquire + release, of a lost race, of a `@Cron`
 * call (served, then found served), and of a fresh instance's first; then Redis's own count of
 * bytes and command time per cycle, and what stays under the lock name.
 */
async function runMonitor(
  options: Options,
  port: number,
  admin: Redis,
  running: Running[],
): Promise<NonNullable<BenchResults['monitor']>> {
  const keyMark = 'mon:';
  for (const c of running) await c.process.call('warmup', { key: `${keyMark}${c.id}`, ops: 20 });
  const warm = await captureCommands(port, admin, async (mark) => {
    for (const c of running) await mark(c.id, () => c.process.call('cycle', { key: `${keyMark}${c.id}` }));
  });
  // A lost race: another replica holds the key and this one tries once.
  const racers = running.filter((c) => c.lockClient && options.scenarios.has('contention'));
  const lost = await captureCommands(port, admin, async (mark) => {
    for (const c of racers) {
      const key = `${keyMark}held:${c.id}`;
      await c.process.call('hold', { key });
      await mark(c.id, async () => {
        if (await c.process.call('tryHeld', { key })) throw new Error(`${c.id} took a lock held by another replica`);
      });
      await c.process.call('unhold', {});
    }
  });
  // A @Cron handler called twice within one minute: the first call serves the minute's
  // occurrence, the second finds it served.
  const scheduled = running.filter((c) => c.decorated);
  const cron = await captureCommands(port, admin, async (mark) => {
    for (const c of scheduled) {
      const key = `${keyMark}cron:${c.id}`;
      const intoMinuteMs = Date.now() % 60_000;
      if (intoMinuteMs > 57_000) await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinuteMs));
      await mark(`${c.id}: runs`, async () => {
        if (!(await c.process.call('scheduled', { key }))) throw new Error(`${c.id} did not serve a new occurrence`);
      });
      await mark(`${c.id}: served`, async () => {
        if (await c.process.call('scheduled', { key })) throw new Error(`${c.id} served an occurrence twice`);
      });
    }
  });
  // Redis's own accounting, then what stays under each lock name: a new name per contender
  // (before the cold start, whose SCRIPT FLUSH the floors' raw EVALSHA would not survive).
  const redis: Record<string, RedisAccount> = {};
  const left: Record<string, Record<string, { type: string; bytes: number }>> = {};
  const accounts = new Map<string, RedisAccount[]>();
  for (let rep = 0; rep < ACCOUNTED_SAMPLES; rep++) {
    for (const c of rotated(running, rep)) {
      const key = `${keyMark}count:${c.id}`;
      await c.process.call('warmup', { key, ops: 20 });
      const sample = await accountRedis(admin, ACCOUNTED_CYCLES, () =>
        c.process.call('warmup', { key, ops: ACCOUNTED_CYCLES }),
      );
      push(accounts, c.id, sample);
    }
  }
  for (const c of running) {
    redis[c.id] = medianAccount(accounts.get(c.id)!);
    left[c.id] = await keysOfName(admin, `${keyMark}count:${c.id}`);
  }
  // A fresh instance against a server without cached scripts: connection set-up and first call.
  const cold = await captureCommands(port, admin, async (mark) => {
    for (const c of running) {
      await admin.script('FLUSH');
      await mark(c.id, () => c.process.call('cold', { key: `${keyMark}cold:${c.id}` }));
    }
  });
  const scripts = scriptNames();
  const render = (captured: Map<string, MonitoredCommand[]>) =>
    Object.fromEntries([...captured].map(([id, commands]) => [id, commands.map((c) => elide(c, keyMark, scripts))]));
  return { warm: render(warm), lost: render(lost), cron: render(cron), cold: render(cold), redis, left };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
