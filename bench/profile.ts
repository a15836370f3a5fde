/**
 * Where a contender's client-side time and allocations go during sequential acquire + release.
 *
 *   node bench/.work/bench/profile.js [--only floor,service,withLock,decorator] [--ops 20000] [--stub]
 *
 * Each contender runs in a process of its own. The CPU profile (self time per function, grouped by
 * package) and sampled allocations (bytes per cycle, objects already collected included) come from
 * the V8 inspector, around the measured loop only; the raw .cpuprofile files land in
 * bench/.work/profiles/ for Chrome DevTools. `--stub` answers every Redis call at once from a fake
 * client (the floor and this library's contenders, e.g. `--only decorator-fixed-ops-off,decorator-otel`):
 * no I/O, so what is left is each one's own JavaScript; it also times cycles started with the caches
 * emptied (32 MB written first, untimed), as a round trip to a real Redis leaves them.
 */
import { spawnSync } from 'node:child_process';
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { DistributedLockService } from '../src';
import { CONTENDERS, type Cycler, TTL_MS } from './contenders';
import { startBenchRedis } from './redis-server';
import { median } from './stats';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}
interface SamplingNode {
  callFrame: CallFrame;
  selfSize: number;
  children: SamplingNode[];
}

const OUT_DIR = resolve(__dirname, '..', 'profiles');

function post<T>(session: Session, method: string, params: object = {}): Promise<T> {
  return new Promise((done, fail) =>
    session.post(method, params, (error, result) => (error ? fail(error) : done(result as T))),
  );
}

/** Which package a frame belongs to: this library, ioredis, another dependency, Node, or V8. */
function owner(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.includes('/bench/.work/src/')) return 'library (src/)';
  if (url.includes('/bench/.work/bench/')) return 'bench harness';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node core';
  return url;
}

function frameName(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(node_modules\/|bench\/\.work\/)/, '');
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

function top(map: Map<string, number>, count: number): [string, number][] {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, count);
}

/**
 * An ioredis stand-in that answers at once: every script 1 (an acquisition granted without a
 * fencing token, a release done), SET OK, and the job declaration at startup and its removal at
 * close (HSET, HSETNX, HDEL) 1.
 */
function stubClient(): Redis {
  const stub = {
    status: 'ready',
    // What the library asks of a client it is given: no command replayed after a reconnect.
    options: { enableOfflineQueue: false, autoResendUnfulfilledCommands: false },
    set: () => Promise.resolve('OK'),
    evalsha: () => Promise.resolve(1),
    hset: () => Promise.resolve(1),
    hsetnx: () => Promise.resolve(1),
    hdel: () => Promise.resolve(1),
    script: () => Promise.resolve('sha'),
    on: () => stub,
    off: () => stub,
  };
  return stub as unknown as Redis;
}

async function stubCycler(id: string): Promise<Cycler> {
  const client = stubClient();
  switch (id) {
    case 'floor': {
      let counter = 0;
      return {
        async cycle(key) {
          const token = `prefix${++counter}`;
          if ((await client.set(key, token, 'PX', TTL_MS, 'NX')) !== 'OK') throw new Error('not granted');
          await client.evalsha('sha', 1, key, token);
        },
        close: async () => undefined,
      };
    }
    case 'service':
    case 'withLock': {
      const service = new DistributedLockService({ client, logger: false });
      const noop = async (): Promise<boolean> => true;
      return {
        cycle:
          id === 'service'
            ? async (key) => {
                if (!(await service.acquireLock(key, TTL_MS))) throw new Error('not granted');
                await service.releaseLock(key);
              }
            : async (key) => {
                if (!(await service.withLock(key, TTL_MS, noop)).ran) throw new Error('not granted');
              },
        close: () => service.close(),
      };
    }
    default: {
      const contender = CONTENDERS.find((c) => c.id === id);
      if (!contender?.openOn) throw new Error(`--stub covers the floor and this library's contenders, not ${id}`);
      return contender.openOn({ client });
    }
  }
}

/** Touched between two cycles: larger than the machine's caches, so each cycle starts with them cold. */
const CACHE_SWEEP = new Float64Array(4 * 1024 * 1024);
const COLD_CYCLES = 1_000;

/**
 * The median time of one cycle started with the caches emptied (32 MB written first, untimed):
 * between two round trips to a real Redis, the kernel and redis-server evict the client's code
 * and data, which the stubbed loop otherwise keeps warm.
 */
async function coldCycleUs(cycler: Cycler, key: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < COLD_CYCLES; i++) {
    for (let at = 0; at < CACHE_SWEEP.length; at += 8) CACHE_SWEEP[at]++;
    const started = process.hrtime.bigint();
    await cycler.cycle(key);
    times.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  return median(times);
}

async function profileOne(id: string, ops: number, shown: number, stub: boolean): Promise<void> {
  const redis = stub ? undefined : await startBenchRedis();
  // With Redis stubbed nothing else keeps the event loop alive between inspector round trips.
  const keepAlive = setInterval(() => undefined, 1000);
  const session = new Session();
  session.connect();
  mkdirSync(OUT_DIR, { recursive: true });
  try {
    const contender = CONTENDERS.find((c) => c.id === id);
    if (!contender) throw new Error(`Unknown contender ${id}`);
    const cycler = stub ? await stubCycler(id) : await contender.open(redis!.url);
    const key = `profile:${id}`;
    for (let i = 0; i < 5000; i++) await cycler.cycle(key); // JIT warm-up

    const started = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) await cycler.cycle(key);
    const unprofiledUs = Number(process.hrtime.bigint() - started) / 1000 / ops;
    const coldUs = stub ? await coldCycleUs(cycler, key) : undefined;

    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.setSamplingInterval', { interval: stub ? 20 : 100 });
    await post(session, 'Profiler.start');
    for (let i = 0; i < ops; i++) await cycler.cycle(key);
    const { profile } = await post<{ profile: CpuProfile }>(session, 'Profiler.stop');
    writeFileSync(join(OUT_DIR, `${id}${stub ? '-stub' : ''}.cpuprofile`), JSON.stringify(profile));

    // Every sample is kept (collected objects included), so sample a bounded number of cycles.
    const heapOps = Math.min(ops, 20_000);
    await post(session, 'HeapProfiler.enable');
    await post(session, 'HeapProfiler.startSampling', {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    for (let i = 0; i < heapOps; i++) await cycler.cycle(key);
    const { profile: heap } = await post<{ profile: { head: SamplingNode } }>(session, 'HeapProfiler.stopSampling');
    await cycler.close();

    report(`${id}${stub ? ' (Redis stubbed)' : ''}`, ops, heapOps, unprofiledUs, coldUs, profile, heap.head, shown);
  } finally {
    session.disconnect();
    clearInterval(keepAlive);
    await redis?.stop();
  }
}

function report(
  id: string,
  ops: number,
  heapOps: number,
  wallUs: number,
  coldUs: number | undefined,
  profile: CpuProfile,
  heap: SamplingNode,
  shown: number,
) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((nodeId, i) => selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + profile.timeDeltas[i]));
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [nodeId, us] of selfUs) {
    const frame = byId.get(nodeId)!.callFrame;
    byOwner.set(owner(frame), (byOwner.get(owner(frame)) ?? 0) + us / ops);
    if (frame.functionName !== '(idle)') {
      byFunction.set(frameName(frame), (byFunction.get(frameName(frame)) ?? 0) + us / ops);
    }
  }
  const lines = [`\n## ${id}: ${ops} sequential cycles, ${wallUs.toFixed(2)} µs wall per cycle unprofiled`, ''];
  if (coldUs !== undefined) {
    lines.push(
      `With the caches emptied before each cycle, as a round trip to Redis leaves them: ${coldUs.toFixed(2)} µs (p50).`,
      '',
    );
  }
  lines.push('Self time per cycle while profiled, by owner (µs):');
  for (const [name, us] of top(byOwner, 12)) lines.push(`  ${us.toFixed(2).padStart(7)}  ${name}`);
  lines.push('', `Top ${shown} functions by self time per cycle (µs, idle excluded):`);
  for (const [name, us] of top(byFunction, shown)) lines.push(`  ${us.toFixed(2).padStart(7)}  ${name}`);

  const allocByOwner = new Map<string, number>();
  const allocByFunction = new Map<string, number>();
  let total = 0;
  const walk = (node: SamplingNode): void => {
    if (node.selfSize) {
      total += node.selfSize;
      const o = owner(node.callFrame);
      allocByOwner.set(o, (allocByOwner.get(o) ?? 0) + node.selfSize);
      const f = frameName(node.callFrame);
      allocByFunction.set(f, (allocByFunction.get(f) ?? 0) + node.selfSize);
    }
    node.children.forEach(walk);
  };
  walk(heap);
  lines.push(
    '',
    `Allocated per cycle (sampled over ${heapOps} cycles): ${(total / heapOps).toFixed(0)} bytes; by owner:`,
  );
  for (const [name, bytes] of top(allocByOwner, 10))
    lines.push(`  ${(bytes / heapOps).toFixed(0).padStart(7)}  ${name}`);
  lines.push(`Top ${shown} allocating functions (bytes per cycle):`);
  for (const [name, bytes] of top(allocByFunction, shown)) {
    lines.push(`  ${(bytes / heapOps).toFixed(0).padStart(7)}  ${name}`);
  }
  console.log(lines.join('\n'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      ops: { type: 'string' },
      top: { type: 'string' },
      stub: { type: 'boolean', default: false },
      one: { type: 'string' },
    },
  });
  const ops = Number(values.ops ?? (values.stub ? 200_000 : 20_000));
  const shown = Number(values.top ?? 25);
  if (values.one) return profileOne(values.one, ops, shown, values.stub);
  // One process per contender: the first AsyncLocalStorage.run() slows every later promise of a process.
  for (const id of (values.only ?? 'floor,service,withLock,decorator').split(',')) {
    const args = [__filename, '--one', id, '--ops', String(ops), '--top', String(shown)];
    const child = spawnSync(process.execPath, values.stub ? [...args, '--stub'] : args, { stdio: 'inherit' });
    if (child.status !== 0) throw new Error(`profiling ${id} failed`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
