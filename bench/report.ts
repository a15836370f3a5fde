import type { RedisAccount } from './monitor-capture';
import type { DecoratorHeapSample, HeldMemorySample, LatencySample } from './scenarios';
import { checkTargets, floorAgainRatios, renderTargets, sdkCallsPerRun } from './targets';

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
  /** The commit the library was compiled from, and its src/ files that differed from it (a shared checkout). */
  source?: { commit: string; modified: string[] };
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
  /** Per decorator contender followed over a million calls. */
  decoratorHeap?: Record<string, DecoratorHeapSample>;
  /** What the OpenTelemetry contenders' SDK recorded by the end of the throughput scenario. */
  telemetrySeen?: Record<string, { spans: number; runsCounted: number }>;
  /**
   * Redis commands, values elided: one warm acquire + release, one attempt on a lock held by another
   * replica (lost), a `@Cron` call that serves its occurrence and one that finds it served (cron,
   * labelled `<id>: runs` / `<id>: served`), and a fresh instance's connection set-up and first
   * acquire + release (cold). `redis`: Redis's own count of bytes and command time per cycle;
   * `left`: the keys under the lock name after those cycles, with their MEMORY USAGE.
   */
  monitor?: {
    warm: Record<string, string[]>;
    lost: Record<string, string[]>;
    cron?: Record<string, string[]>;
    cold: Record<string, string[]>;
    redis?: Record<string, RedisAccount>;
    left?: Record<string, Record<string, { type: string; bytes: number }>>;
  };
  durationSec?: number;
}

const PINNING = {
  same: 'with redis-server and the contender on one core',
  split: 'with redis-server alone on one core, the contenders on the other(s)',
  off: 'unpinned',
};

/** `value` to `digits` decimals, or '–' when not measured. */
export const fixed = (value: number | undefined, digits: number): string =>
  value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
const thousands = (value: number | undefined): string =>
  value === undefined || !Number.isFinite(value) ? '–' : Math.round(value).toLocaleString('en-US');
/** A ratio to two decimals with its ×, or '–' when not measured. */
export const times = (value: number | undefined): string =>
  value === undefined || !Number.isFinite(value) ? '–' : `${fixed(value, 2)}×`;

/** The Markdown tables printed to stdout and written to latest.md, ready for docs/performance.md. */
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

  lines.push(...renderTargets(checkTargets(results), sdkCallsPerRun(results), floorAgainRatios(results)));

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

  for (const [id, heap] of Object.entries(results.decoratorHeap ?? {})) {
    const first = heap.points[0].heapMB;
    const last = heap.points[heap.points.length - 1].heapMB;
    lines.push(
      `${label(id)} over ${heap.calls.toLocaleString('en-US')} calls (${heap.concurrency} concurrent callers, ` +
        `${thousands(heap.callsPerSec)} calls/s): heap after GC ${fixed(first, 1)} MB → ${fixed(last, 1)} MB, ` +
        `growth ${fixed(heap.growthMBPerMillion, 2)} MB per million calls (least-squares over ${heap.points.length} samples).`,
      '',
    );
  }

  for (const [id, seen] of Object.entries(results.telemetrySeen ?? {})) {
    lines.push(
      `${label(id)}: its OpenTelemetry SDK had ended ${seen.spans.toLocaleString('en-US')} spans and counted ` +
        `${seen.runsCounted.toLocaleString('en-US')} runs by the end of the throughput scenario.`,
      '',
    );
  }

  if (results.monitor) lines.push(...renderMonitor(results.monitor, label));
  return `${lines.join('\n')}\n`;
}

/** One cell of commands: those sent, joined by ` · `, each followed by the calls its script made. */
function commandCell(commands: readonly string[] | undefined): string {
  if (!commands) return '–';
  const sent: { command: string; lua: string[] }[] = [];
  for (const command of commands) {
    const lua = /^\s+\(lua\) (.*)$/.exec(command);
    if (lua && sent.length) sent[sent.length - 1].lua.push(lua[1]);
    else sent.push({ command, lua: [] });
  }
  const code = (text: string): string => `\`${text}\``;
  return sent
    .map(({ command, lua }) => code(command) + (lua.length ? ` → (lua) ${lua.map(code).join(', ')}` : ''))
    .join(' · ');
}

function renderMonitor(monitor: NonNullable<BenchResults['monitor']>, label: (id: string) => string): string[] {
  const lines = [
    '**Redis commands per acquire + release** (MONITOR, values elided; `(lua)`: calls a script makes; each command sent with its size on the wire):',
    '',
    '| Contender | Commands |',
    '|---|---|',
  ];
  for (const [id, commands] of Object.entries(monitor.warm)) lines.push(`| ${label(id)} | ${commandCell(commands)} |`);
  lines.push('');
  if (monitor.cron && Object.keys(monitor.cron).length) {
    lines.push(
      "**A `@Cron` call** (`@Cron('0 * * * * *')` above `@DistributedLock`, called twice in one minute):",
      '',
      '| Contender | Call | Commands |',
      '|---|---|---|',
    );
    for (const [name, commands] of Object.entries(monitor.cron)) {
      const [id, call] = name.split(': ');
      lines.push(
        `| ${label(id)} | ${call === 'runs' ? 'serves the occurrence' : 'finds it served'} | ${commandCell(commands)} |`,
      );
    }
    lines.push('');
  }
  if (monitor.redis) {
    const names = [...new Set(Object.values(monitor.redis).flatMap((account) => Object.keys(account.commands)))].sort();
    const any = Object.values(monitor.redis)[0];
    lines.push(
      `**What Redis counts per acquire + release** (INFO stats and commandstats around ${any?.cycles ?? 0} sequential cycles ` +
        `per contender, alone, medians of ${any?.samples ?? 1} such samples taken in turn; µs of Redis time per cycle, ` +
        'scripts including the commands they call; then what stays under the lock name, MEMORY USAGE):',
      '',
      `| Contender | bytes to Redis | bytes from Redis | ${names.map((name) => `${name} µs`).join(' | ')} | left under the lock name |`,
      `|---|--:|--:|${names.map(() => '--:').join('|')}|---|`,
    );
    for (const [id, account] of Object.entries(monitor.redis)) {
      const kept = Object.entries(monitor.left?.[id] ?? {})
        .map(([key, { type, bytes }]) => `\`${key}\` ${type}, ${bytes.toLocaleString('en-US')} B`)
        .join('; ');
      const cells = names.map((name) => {
        const command = account.commands[name];
        if (!command) return '–';
        const { usecPerCycle: usec, callsPerCycle: calls } = command;
        // A background command (the drift watch every 3 s) is called less than once per hundred cycles.
        const time = usec > 0 && usec < 0.05 ? '<0.1' : fixed(usec, 1);
        return `${time}${calls === 1 ? '' : ` (×${calls > 0 && calls < 0.01 ? calls.toPrecision(1) : fixed(calls, 2)})`}`;
      });
      lines.push(
        `| ${label(id)} | ${fixed(account.bytesInPerCycle, 0)} | ${fixed(account.bytesOutPerCycle, 0)} | ${cells.join(' | ')} | ${kept || 'nothing'} |`,
      );
    }
    lines.push('');
  }
  return lines;
}
