import { median } from './stats';

/** What the targets are computed from: the part of a run's results (`BenchResults`) they read. */
interface MeasuredRun {
  readonly contenders: readonly { id: string; label: string; kind: string }[];
  readonly latency: Record<string, { p50Ratio: number; reps: readonly { p50Us: number }[] }>;
  readonly throughput: Record<string, { reps: readonly number[] }>;
  readonly contention: Record<string, { p50Ratio: number }>;
}

/** One of the floor's targets as a run measured it. */
export interface TargetCheck {
  readonly target: string;
  /** The measured figure, with `unit`. */
  readonly value: number;
  readonly limit: number;
  readonly unit: '×' | '× the floor';
  /** `at-most`: met when value ≤ limit; `at-least`: met when value ≥ limit. */
  readonly direction: 'at-most' | 'at-least';
  readonly met: boolean;
}

/** The median over repetitions of `id`'s latency p50 over `baseline`'s, both taken in each repetition. */
function latencyRatio(results: MeasuredRun, id: string, baseline: string): number | undefined {
  const of = results.latency[id]?.reps;
  const base = results.latency[baseline]?.reps;
  if (!of || !base) return undefined;
  return median(of.map((sample, rep) => sample.p50Us / base[rep].p50Us));
}

function throughputRatio(results: MeasuredRun, id: string, baseline: string): number | undefined {
  const of = results.throughput[id]?.reps;
  const base = results.throughput[baseline]?.reps;
  if (!of || !base) return undefined;
  return median(of.map((opsPerSec, rep) => opsPerSec / base[rep]));
}

/**
 * The floor's targets, each computed from this run alone: the plain lock against the floor and
 * every alternative, each option against its own command floor, the 50-replica race.
 */
export function checkTargets(results: MeasuredRun): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const add = (
    target: string,
    value: number | undefined,
    limit: number,
    direction: TargetCheck['direction'] = 'at-most',
    unit: TargetCheck['unit'] = '×',
  ): void => {
    if (value === undefined || !Number.isFinite(value)) return;
    const met = direction === 'at-most' ? value <= limit : value >= limit;
    checks.push({ target, value, limit, unit, direction, met });
  };
  add('`acquireLock`/`releaseLock` p50 vs the floor', latencyRatio(results, 'service', 'floor'), 1.05);
  for (const alternative of results.contenders.filter((c) => c.kind === 'alternative')) {
    const ours = latencyRatio(results, 'service', alternative.id);
    add(`\`acquireLock\`/\`releaseLock\` p50 vs ${alternative.label}`, ours, 1, 'at-most');
  }
  add('`withLock` p50 vs the floor', latencyRatio(results, 'withLock', 'floor'), 1.08);
  add('`@DistributedLock`, no options, p50 vs the floor', latencyRatio(results, 'decorator', 'floor'), 1.08);
  add(
    '`@DistributedLock`, fixed name, operations on: p50 vs `floor-operations`',
    latencyRatio(results, 'decorator-fixed', 'floor-operations'),
    1.1,
  );
  add(
    '`@DistributedLock`, fixed name, operations on: throughput vs `floor-operations`',
    throughputRatio(results, 'decorator-fixed', 'floor-operations'),
    0.9,
    'at-least',
  );
  const otel = results.latency['decorator-otel']?.p50Ratio;
  const off = results.latency['decorator-fixed-ops-off']?.p50Ratio;
  if (otel !== undefined && off !== undefined) {
    add('`openTelemetry` (SDK) added per run, p50', otel - off, 0.2, 'at-most', '× the floor');
  }
  add('50-replica race, decision p50 vs the floor', results.contention.service?.p50Ratio, 1.05);
  return checks;
}

/**
 * What the OpenTelemetry SDK's own calls for one run add without the library: `floor-otel` (the
 * floor plus those calls, made by hand) over the floor, × the floor, as the `openTelemetry` target
 * is. Not a target: the part of that target the library cannot take off.
 */
export function sdkCallsPerRun(results: MeasuredRun): number | undefined {
  const ratio = results.latency['floor-otel']?.p50Ratio;
  return ratio === undefined ? undefined : ratio - 1;
}

/** The sentence that reports `sdkCallsPerRun`: one run's figure (`inThisRun`), or several runs' side by side. */
export function sdkCallsSentence(figures: string, inThisRun = false): string {
  return `For reference (not a target): the OpenTelemetry SDK's own calls for one run, made by hand around the floor's cycle (\`floor-otel\`), add ${figures} the floor${inThisRun ? ' in this run' : ''}.`;
}

/** `floor-again` over the floor, per scenario the run had. */
export interface FloorAgain {
  readonly latency?: number;
  readonly throughput?: number;
  readonly race?: number;
}

/**
 * The floor against itself: `floor-again` (the same client in a second process) over the floor on
 * latency, throughput and the race. Not a target: how far apart two identical contenders land in
 * the run, against which a target's distance from its limit can be read.
 */
export function floorAgainRatios(results: MeasuredRun): FloorAgain {
  return {
    latency: latencyRatio(results, 'floor-again', 'floor'),
    throughput: throughputRatio(results, 'floor-again', 'floor'),
    race: results.contention['floor-again']?.p50Ratio,
  };
}

/** A ratio as the reference sentences print it; '–' for a scenario the run did not have. */
export function ratioFigure(value: number | undefined): string {
  return value === undefined ? '–' : `${value.toFixed(2)}×`;
}

/** The sentence that reports `floorAgainRatios`: each figure one run's, or several runs' side by side. */
export function floorAgainSentence(latency: string, throughput: string, race: string, inThisRun = false): string {
  return (
    `For reference (not a target): the floor run again in a process of its own (\`floor-again\`) measured ` +
    `${latency} the floor at p50, ${throughput} on throughput and ${race} in the race${inThisRun ? ' in this run' : ''}: ` +
    'how far apart two identical contenders land.'
  );
}

export function renderTargets(checks: readonly TargetCheck[], sdkCalls?: number, floorAgain?: FloorAgain): string[] {
  if (checks.length === 0) return [];
  const reference = sdkCalls === undefined ? [] : [sdkCallsSentence(ratioFigure(sdkCalls), true), ''];
  if (floorAgain?.latency !== undefined) {
    const { latency, throughput, race } = floorAgain;
    reference.push(floorAgainSentence(ratioFigure(latency), ratioFigure(throughput), ratioFigure(race), true), '');
  }
  return [
    "**The floor's targets in this run** (ratios are medians of per-repetition ratios, both sides timed in each repetition):",
    '',
    '| Target | Measured | Limit | Met |',
    '|---|--:|--:|---|',
    ...checks.map(
      ({ target, value, limit, unit, direction, met }) =>
        `| ${target} | ${value.toFixed(2)}${unit} | ${direction === 'at-most' ? '≤' : '≥'} ${limit.toFixed(2)}${unit} | ${met ? 'yes' : '**no**'} |`,
    ),
    '',
    ...reference,
  ];
}
