import type { DecoratorHeapSample, HeldMemorySample, LatencySample } from './scenarios';

/** What bench/results/latest.json holds. */
export interface BenchResults {
  date: string;
  machine: {
    cpu: string;
    cores: number;
    node: string;
    redis: string;
    os: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd?: number[];
  };
  config: Record<string, number>;
  /** `same`: redis-server and the contenders on CPU 0; `split`: redis-server on a CPU of its own. */
  pinning: { latency: 'split' | 'same' | 'off'; others: 'split' | 'same' | 'off' };
  contenders: { id: string; label: string; kind: string; note: string }[];
  /** Sequential acquire + release, medians over repetitions; ratios are paired per repetition. */
  latency: Record<
    string,
    {
      p50Us: number;
      p99Us: number;
      clientCpuUs: number;
      serverCpuUs: number;
      p50Ratio: number;
      p99Ratio: number;
      clientCpuRatio: number;
      reps: LatencySample[];
    }
  >;
  throughput: Record<string, { opsPerSec: number; ratio: number; reps: number[] }>;
  contention: Record<
    string,
    {
      replicas: number;
      rounds: number;
      badRounds: number;
      winnersPerRound: Record<string, number>;
      decisionP50Ms: number;
      decisionP99Ms: number;
      p50Ratio: number;
    }
  >;
  memory: Record<string, HeldMemorySample>;
  decoratorHeap?: DecoratorHeapSample;
  /**
   * Redis commands, values elided: one warm acquire + release, one attempt on a lock held by another
   * replica (lost), and a fresh instance's connection set-up and first acquire + release (cold).
   */
  monitor?: { warm: Record<string, string[]>; lost: Record<string, string[]>; cold: Record<string, string[]> };
  durationSec?: number;
}

const PINNING = {
  same: 'with redis-server and the contender on one core',
  split: 'with redis-server alone on one core, the contenders on the other(s)',
  off: 'unpinned',
};

const fixed = (value: number | undefined, digits: number): string =>
  value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
const thousands = (value: number | undefined): string =>
  value === undefined || !Number.isFinite(value) ? '–' : Math.round(value).toLocaleString('en-US');
const times = (value: number | undefined): string => (value === undefined ? '–' : `${fixed(value, 2)}×`);

/** The Markdown tables printed to stdout and written to latest.md, ready for the README. */
export function renderMarkdown(results: BenchResults): string {
  const { machine, config } = results;
  const lines: string[] = [];
  const label = (id: string): string => results.contenders.find((c) => c.id === id)?.label ?? id;
  lines.push(
    `Measured ${results.date.slice(0, 10)} on ${machine.cpu} (${machine.cores} cores, shared), Node ${machine.node}, ` +
      `Redis ${machine.redis}, all contenders against one local redis-server in the same run. ` +
      `Medians of ${config.reps} interleaved repetitions; "vs floor" is the median of per-repetition ratios.` +
      (Object.keys(results.latency).length
        ? ` Pinning: latency ${PINNING[results.pinning.latency]}; other scenarios ${PINNING[results.pinning.others]}.`
        : ` Pinning: ${PINNING[results.pinning.others]}.`),
    '',
  );

  if (Object.keys(results.latency).length || Object.keys(results.throughput).length) {
    lines.push(
      `| Contender | p50 µs | p99 µs | p50 vs floor | client CPU µs/op | Redis CPU µs/op | ops/s (${config.workers} workers) | ops/s vs floor |`,
      '|---|--:|--:|--:|--:|--:|--:|--:|',
    );
    for (const { id } of results.contenders) {
      const l = results.latency[id];
      const t = results.throughput[id];
      if (!l && !t) continue;
      lines.push(
        `| ${label(id)} | ${fixed(l?.p50Us, 0)} | ${fixed(l?.p99Us, 0)} | ${times(l?.p50Ratio)} | ${fixed(l?.clientCpuUs, 0)} | ` +
          `${fixed(l?.serverCpuUs, 0)} | ${thousands(t?.opsPerSec)} | ${times(t?.ratio)} |`,
      );
    }
    lines.push(
      '',
      `Latency: ${config.seqOps} sequential acquire + release per contender per repetition, one key. ` +
        `Throughput: ${config.tpOps} per repetition, ${config.workers} concurrent workers on distinct keys, one connection.`,
      '',
    );
  }

  if (Object.keys(results.contention).length) {
    const any = Object.values(results.contention)[0];
    lines.push(
      `| Contention: ${any.replicas} replicas, one key | rounds | rounds with exactly one winner | decision p50 ms | decision p99 ms | p50 vs floor |`,
      '|---|--:|--:|--:|--:|--:|',
    );
    for (const [id, c] of Object.entries(results.contention)) {
      lines.push(
        `| ${label(id)} | ${c.rounds} | ${c.rounds - c.badRounds}${c.badRounds ? ' ⚠' : ''} | ${fixed(c.decisionP50Ms, 2)} | ` +
          `${fixed(c.decisionP99Ms, 2)} | ${times(c.p50Ratio)} |`,
      );
    }
    lines.push('');
  }

  if (Object.keys(results.memory).length) {
    lines.push(
      `| ${config.held.toLocaleString('en-US')} locks held at once | Redis bytes/lock | Redis keys/lock | left in Redis after release (keys/lock, bytes/lock) | holder heap bytes/lock |`,
      '|---|--:|--:|--:|--:|',
    );
    for (const [id, m] of Object.entries(results.memory)) {
      lines.push(
        `| ${label(id)} | ${fixed(m.redisBytesPerLock, 0)} | ${fixed(m.keysPerLock, 0)} | ` +
          `${fixed(m.residualKeysPerLock, 0)}, ${fixed(m.residualBytesPerLock, 0)} | ${fixed(m.heapBytesPerLock, 0)} |`,
      );
    }
    lines.push('');
  }

  const heap = results.decoratorHeap;
  if (heap) {
    const first = heap.points[0].heapMB;
    const last = heap.points[heap.points.length - 1].heapMB;
    lines.push(
      `\`@DistributedLock\` over ${heap.calls.toLocaleString('en-US')} calls (${heap.concurrency} concurrent callers, ` +
        `${thousands(heap.callsPerSec)} calls/s): heap after GC ${fixed(first, 1)} MB → ${fixed(last, 1)} MB, ` +
        `growth ${fixed(heap.growthMBPerMillion, 2)} MB per million calls (least-squares over ${heap.points.length} samples).`,
      '',
    );
  }
  return `${lines.join('\n')}\n`;
}
