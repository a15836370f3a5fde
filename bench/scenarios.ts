import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import type { Cycler, LockClient } from './contenders';
import { infoNumber } from './redis-server';
import { quantile, slope } from './stats';

/** CPU time redis-server has used so far, in µs (Linux schedstat: ns on CPU). */
export function serverCpuUs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
  } catch {
    return NaN;
  }
}

function clientCpuUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

export interface LatencySample {
  p50Us: number;
  p99Us: number;
  /** CPU time of this Node process per acquire + release, µs. */
  clientCpuUs: number;
  /** CPU time of redis-server per acquire + release, µs. */
  serverCpuUs: number;
}

/** Raw timings of a slice of sequential cycles, as a contender's process reports them. */
export interface LatencySlice {
  samplesMs: number[];
  clientCpuUs: number;
  serverCpuUs: number;
}

/** (1) `ops` acquire + release cycles one after the other on `key`, each timed. */
export async function timeCycles(cycler: Cycler, key: string, ops: number, redisPid: number): Promise<LatencySlice> {
  const samplesMs: number[] = [];
  const cpu0 = clientCpuUs();
  const server0 = serverCpuUs(redisPid);
  for (let i = 0; i < ops; i++) {
    const started = performance.now();
    await cycler.cycle(key);
    samplesMs.push(performance.now() - started);
  }
  return { samplesMs, clientCpuUs: clientCpuUs() - cpu0, serverCpuUs: serverCpuUs(redisPid) - server0 };
}

/** Gathers one contender's slices within a repetition. */
export class LatencyRecorder {
  private readonly samples: number[] = [];
  private clientCpu = 0;
  private serverCpu = 0;

  add(slice: LatencySlice): void {
    this.samples.push(...slice.samplesMs);
    this.clientCpu += slice.clientCpuUs;
    this.serverCpu += slice.serverCpuUs;
  }

  result(): LatencySample {
    return {
      p50Us: quantile(this.samples, 0.5) * 1000,
      p99Us: quantile(this.samples, 0.99) * 1000,
      clientCpuUs: this.clientCpu / this.samples.length,
      serverCpuUs: this.serverCpu / this.samples.length,
    };
  }
}

/** (2) `workers` concurrent loops of acquire + release, each on its own key, `ops` cycles in all; returns seconds. */
export async function throughput(cycler: Cycler, keyPrefix: string, ops: number, workers: number): Promise<number> {
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      const key = `${keyPrefix}:${worker}`;
      while (issued < ops) {
        issued++;
        await cycler.cycle(key);
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

export interface ContentionSample {
  rounds: number;
  /** Rounds that did not end with exactly one winner. */
  badRounds: number;
  /** How many rounds each winner count occurred in, e.g. { "1": 40 }. */
  winnersPerRound: Record<string, number>;
  /** From the start of a round to each replica's own answer, ms. */
  decisionsMs: number[];
}

/**
 * (3) Every replica (its own connection) tries the same key at once, one attempt each. The one
 * that wins releases before the next round.
 */
export async function contention(replicas: LockClient[], key: string, rounds: number): Promise<ContentionSample> {
  const sample: ContentionSample = { rounds, badRounds: 0, winnersPerRound: {}, decisionsMs: [] };
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    const results = await Promise.all(
      replicas.map(async (replica) => {
        const held = await replica.tryAcquire(key);
        sample.decisionsMs.push(performance.now() - started);
        return held;
      }),
    );
    const winners = results.filter((held) => held !== undefined);
    sample.winnersPerRound[winners.length] = (sample.winnersPerRound[winners.length] ?? 0) + 1;
    if (winners.length !== 1) sample.badRounds++;
    await Promise.all(results.map((held, i) => (held === undefined ? undefined : replicas[i].release(held))));
  }
  return sample;
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('Run node with --expose-gc (npm run bench does).');
  gc();
  gc();
}

function heapUsed(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

/** used_memory once client buffers from the last burst have settled: the lowest of a few reads. */
async function usedMemory(redis: Redis): Promise<number> {
  let lowest = Infinity;
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    lowest = Math.min(lowest, await infoNumber(redis, 'memory', 'used_memory'));
  }
  return lowest;
}

export interface HeldMemorySample {
  locks: number;
  /** Redis used_memory growth per held lock, bytes. */
  redisBytesPerLock: number;
  /** Redis keys per held lock. */
  keysPerLock: number;
  /** What stays in Redis per lock name once every lock is released: bytes and keys. */
  residualBytesPerLock: number;
  residualKeysPerLock: number;
  /** Node heap growth (after GC) per held lock in the holding process, bytes. */
  heapBytesPerLock: number;
}

/** (4) `count` distinct locks held at once by one client, then all released. */
export async function heldLocksMemory(
  client: LockClient,
  redis: Redis,
  keyPrefix: string,
  count: number,
  concurrency: number,
): Promise<HeldMemorySample> {
  // Warm-up: scripts cached, connection buffers allocated, before the baseline.
  for (let i = 0; i < 100; i++) {
    const held = await client.tryAcquire(`${keyPrefix}:warm:${i}`);
    if (held !== undefined) await client.release(held);
  }
  await redis.flushall();
  const before = await usedMemory(redis);
  const heapBefore = heapUsed();
  const held: unknown[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const key = `${keyPrefix}:${String(i).padStart(6, '0')}`;
        held[i] = await client.tryAcquire(key);
        if (held[i] === undefined) throw new Error(`${key} was not granted`);
      }
    }),
  );
  const heapHolding = heapUsed();
  const holding = await usedMemory(redis);
  const keysHolding = await redis.dbsize();
  next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await client.release(held[next++]);
    }),
  );
  const after = await usedMemory(redis);
  const keysAfter = await redis.dbsize();
  return {
    locks: count,
    redisBytesPerLock: (holding - before) / count,
    keysPerLock: keysHolding / count,
    residualBytesPerLock: (after - before) / count,
    residualKeysPerLock: keysAfter / count,
    heapBytesPerLock: (heapHolding - heapBefore) / count,
  };
}

export interface DecoratorHeapSample {
  calls: number;
  concurrency: number;
  /** Heap after GC, MB, after each slice of calls (the first after warm-up). */
  points: { calls: number; heapMB: number }[];
  /** Least-squares slope of heap after GC over calls, MB per million calls. */
  growthMBPerMillion: number;
  /** Last minus first sample, MB. */
  deltaMB: number;
  callsPerSec: number;
  /** Redis keys in the database once done (lock names used: `concurrency`; with operations on, each keeps its run history). */
  redisKeysAfter: number;
}

/**
 * (5) A million calls of a decorated no-op (`concurrency` callers, each on its own lock name, through
 * a decorator contender's `cycle`), with the heap measured after GC at regular intervals.
 */
export async function decoratorHeap(
  cycler: Cycler,
  redis: Redis,
  calls: number,
  concurrency: number,
  slices: number,
  onSlice: (done: number, heapMB: number) => void,
): Promise<DecoratorHeapSample> {
  try {
    const run = async (count: number): Promise<void> => {
      let issued = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async (_, worker) => {
          const key = `decorated:${worker}`;
          while (issued < count) {
            issued++;
            await cycler.cycle(key);
          }
        }),
      );
    };
    await run(Math.min(20_000, calls / 10)); // warm-up: JIT, ioredis buffers, Nest instance caches
    const points = [{ calls: 0, heapMB: heapUsed() / 2 ** 20 }];
    const slice = Math.ceil(calls / slices);
    const started = performance.now();
    for (let done = 0; done < calls;) {
      const count = Math.min(slice, calls - done);
      await run(count);
      done += count;
      points.push({ calls: done, heapMB: heapUsed() / 2 ** 20 });
      onSlice(done, points[points.length - 1].heapMB);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      calls,
      concurrency,
      points,
      growthMBPerMillion: slope(points.map((p) => ({ x: p.calls / 1e6, y: p.heapMB }))),
      deltaMB: points[points.length - 1].heapMB - points[0].heapMB,
      callsPerSec: calls / seconds,
      redisKeysAfter: await redis.dbsize(),
    };
  } finally {
    await cycler.close();
  }
}
