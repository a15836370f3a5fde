/**
 * What each option, and each part of OpenTelemetry, adds to one decorated call (a method with a
 * fixed lock name, which `operations` pauses and records; see `openDecorated`): its p50 against
 * the floor timed in the same process, slice by slice, one variant per process (so one variant's
 * AsyncLocalStorage cannot slow another's promises), each process and redis-server pinned to one
 * core as in the suite's latency scenario; three rounds, variants interleaved.
 *
 *   node bench/.work/bench/option-costs.js [--rounds 3] [--only off,otel,…] [--out bench/results/option-costs]
 *
 * (after `npm run bench` or `npx tsc -p bench/tsconfig.json`). Variants other than `ops` run with
 * `operations: false`. `*-run-histogram-only` hand the library a meter provider whose counters and
 * other histograms are no-ops: what the library would cost if it recorded one histogram per run.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  context,
  createNoopMeter,
  type Meter,
  type MeterProvider,
  metrics,
  trace,
  type TracerProvider,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import * as prettier from 'prettier';
import type { DistributedLockOptions } from '../src';
import { CONTENDERS, openDecorated } from './contenders';
import { benchTelemetry } from './open-telemetry-sdk';
import { pinToCpu, startBenchRedis } from './redis-server';
import { median } from './stats';

/** A meter provider whose instruments are no-ops except those named. */
function onlyInstruments(provider: MeterProvider, keep: readonly string[]): MeterProvider {
  const noop = createNoopMeter();
  return {
    getMeter(name, version, options): Meter {
      const real = provider.getMeter(name, version, options);
      return new Proxy(real, {
        get(target, property: keyof Meter) {
          if (property === 'createCounter' || property === 'createHistogram') {
            const source = (instrument: string) => (keep.includes(instrument) ? target : noop);
            return (instrument: string, options?: object) => source(instrument)[property](instrument, options);
          }
          const value = target[property];
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
}

const RUN_HISTOGRAM = ['distributed_lock.run.duration'];

/** Each variant's options on top of `{ url, operations: false }`, built in the child that measures it. */
const VARIANTS: Record<string, (sdk: ReturnType<typeof benchTelemetry>['options']) => DistributedLockOptions> = {
  off: () => ({}),
  ops: () => ({ operations: true }),
  events: () => ({ onEvent: () => undefined }),
  'otel-api-only': () => ({ openTelemetry: true }), // no SDK registered: the API's no-ops
  metrics: (sdk) => ({
    openTelemetry: { meterProvider: sdk.meterProvider, tracerProvider: trace.getTracerProvider() },
  }),
  traces: (sdk) => ({
    openTelemetry: { meterProvider: metrics.getMeterProvider(), tracerProvider: sdk.tracerProvider },
  }),
  otel: (sdk) => ({ openTelemetry: sdk }),
  'otel+als': (sdk) => {
    // What NodeSDK registers: spans then follow the run across awaits, and every promise pays for it.
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    return { openTelemetry: sdk };
  },
  'metrics-run-histogram-only': (sdk) => ({
    openTelemetry: {
      meterProvider: onlyInstruments(sdk.meterProvider as MeterProvider, RUN_HISTOGRAM),
      tracerProvider: trace.getTracerProvider(),
    },
  }),
  'otel-run-histogram-only': (sdk) => ({
    openTelemetry: {
      meterProvider: onlyInstruments(sdk.meterProvider as MeterProvider, RUN_HISTOGRAM),
      tracerProvider: sdk.tracerProvider as TracerProvider,
    },
  }),
};

interface Measured {
  variant: string;
  floorP50Us: number;
  p50Us: number;
  ratio: number;
  floorCpuUs: number;
  cpuUs: number;
}

async function measure(variant: string, url: string): Promise<Measured> {
  const telemetry = benchTelemetry();
  const decorated = await openDecorated({
    url,
    operations: false,
    logger: false,
    ...VARIANTS[variant](telemetry.options),
  });
  const floor = await CONTENDERS.find((c) => c.id === 'floor')!.open(url);
  const timed = async (cycle: () => Promise<void>, ops: number, into: number[]): Promise<number> => {
    const cpu = process.cpuUsage();
    for (let i = 0; i < ops; i++) {
      const started = performance.now();
      await cycle();
      into.push((performance.now() - started) * 1000);
    }
    const used = process.cpuUsage(cpu);
    return used.user + used.system;
  };
  const floorCycle = () => floor.cycle('costs:floor');
  const decoratedCycle = () => decorated.cycle('costs:decorated');
  for (let i = 0; i < 2000; i++) await Promise.all([floorCycle(), decoratedCycle()]);
  const floorUs: number[] = [];
  const us: number[] = [];
  let floorCpu = 0;
  let cpu = 0;
  for (let slice = 0; slice < 40; slice++) {
    floorCpu += await timed(floorCycle, 100, floorUs);
    cpu += await timed(decoratedCycle, 100, us);
  }
  await Promise.all([floor.close(), decorated.close()]);
  await telemetry.shutdown();
  const [floorP50Us, p50Us] = [median(floorUs), median(us)];
  return {
    variant,
    floorP50Us,
    p50Us,
    ratio: p50Us / floorP50Us,
    floorCpuUs: floorCpu / floorUs.length,
    cpuUs: cpu / us.length,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      one: { type: 'string' },
      url: { type: 'string' },
      rounds: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
    },
  });
  if (values.one) {
    process.stdout.write(`${JSON.stringify(await measure(values.one, values.url!))}\n`);
    return;
  }
  const variants = values.only?.split(',') ?? Object.keys(VARIANTS);
  const redis = await startBenchRedis();
  const results = new Map<string, Measured[]>(variants.map((variant) => [variant, []]));
  const rounds = Number(values.rounds ?? 3);
  try {
    pinToCpu(redis.pid, 0);
    for (let round = 0; round < rounds; round++) {
      for (const variant of variants) {
        const child = spawnSync(
          'taskset',
          ['-c', '0', process.execPath, __filename, '--one', variant, '--url', redis.url],
          {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        if (child.status !== 0) throw new Error(`${variant} failed`);
        results.get(variant)!.push(JSON.parse(child.stdout) as Measured);
      }
    }
  } finally {
    await redis.stop();
  }
  const off = results.get('off');
  const lines = [
    `A decorated no-op with a fixed lock name, ${rounds} rounds of 4,000 sequential calls per variant (one process each, pinned with ` +
      `redis-server ${redis.version} to one core, Node ${process.version}), against the raw floor timed in the same ` +
      'process slice by slice; variants other than `ops` run with `operations: false`. Medians over rounds.',
    '',
    '| Variant | p50 µs | p50 vs floor | p50 − `off` µs | client CPU − floor µs/cycle | ratios per round |',
    '|---|--:|--:|--:|--:|---|',
  ];
  for (const [variant, measured] of results) {
    const p50 = median(measured.map((r) => r.p50Us));
    const overOff = off ? (p50 - median(off.map((r) => r.p50Us))).toFixed(1) : '–';
    lines.push(
      `| \`${variant}\` | ${p50.toFixed(1)} | ${median(measured.map((r) => r.ratio)).toFixed(2)}× | ${overOff} | ` +
        `${median(measured.map((r) => r.cpuUs - r.floorCpuUs)).toFixed(1)} | ${measured.map((r) => r.ratio.toFixed(2)).join(', ')} |`,
    );
  }
  const out = resolve(values.out ?? resolve(__dirname, '..', '..', 'results', 'option-costs'));
  const markdown = await prettier.format(lines.join('\n'), {
    ...(await prettier.resolveConfig(`${out}.md`)),
    filepath: `${out}.md`,
  });
  writeFileSync(`${out}.md`, markdown);
  process.stdout.write(markdown);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
