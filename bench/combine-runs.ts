/**
 * Puts several `npm run bench` runs side by side: each contender's p50 and ratios per run, the
 * floor's targets per run, the 50-replica race. What `docs/performance.md` is written from.
 *
 *   node bench/.work/bench/combine-runs.js bench/results/run-1.json bench/results/run-2.json … \
 *     [--out bench/results/runs.md]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as prettier from 'prettier';
import { type BenchResults, fixed, times } from './report';
import {
  checkTargets,
  type FloorAgain,
  floorAgainRatios,
  floorAgainSentence,
  ratioFigure,
  sdkCallsPerRun,
  sdkCallsSentence,
} from './targets';

function render(runs: readonly BenchResults[], files: readonly string[]): string {
  const lines: string[] = [];
  const first = runs[0];
  const perRun = (cell: (run: BenchResults) => string): string => runs.map(cell).join(' / ');
  lines.push(
    `${runs.length} runs of \`npm run bench\` (${files.join(', ')}), ${runs.map((r) => r.date.slice(0, 16).replace('T', ' ')).join(', ')} UTC, ` +
      `on ${first.machine.cpu} (${first.machine.cores} cores, shared), Node ${first.machine.node}, Redis ${first.machine.redis}; ` +
      `each cell gives run 1 / run 2 / run 3. Ratios are medians of per-repetition ratios within one run.`,
    '',
    '**Targets**',
    '',
    '| Target | Limit | Measured per run | Met in every run |',
    '|---|--:|--:|---|',
  );
  const checks = runs.map(checkTargets);
  for (const check of checks[0]) {
    const all = checks.map((run) => run.find((c) => c.target === check.target));
    const measured = all.map((c) => (c ? `${c.value.toFixed(2)}×` : '–')).join(' / ');
    const met = all.every((c) => c?.met);
    const limit = `${check.direction === 'at-most' ? '≤' : '≥'} ${check.limit.toFixed(2)}×`;
    lines.push(
      `| ${check.target}${check.unit === '× the floor' ? ' (× the floor)' : ''} | ${limit} | ${measured} | ${met ? 'yes' : '**no**'} |`,
    );
  }
  const sdkCalls = runs.map(sdkCallsPerRun);
  if (sdkCalls.some((value) => value !== undefined)) {
    const figures = sdkCalls.map(ratioFigure).join(' / ');
    lines.push('', sdkCallsSentence(figures));
  }
  const floorAgain = runs.map(floorAgainRatios);
  if (floorAgain.some((ratios) => ratios.latency !== undefined)) {
    const figures = (pick: (ratios: FloorAgain) => number | undefined) =>
      floorAgain.map((ratios) => ratioFigure(pick(ratios))).join(' / ');
    lines.push(
      '',
      floorAgainSentence(
        figures((r) => r.latency),
        figures((r) => r.throughput),
        figures((r) => r.race),
      ),
    );
  }
  lines.push(
    '',
    '**Sequential latency and throughput**',
    '',
    '| Contender | p50 µs | p50 vs floor | client CPU µs/op | ops/s vs floor (64 workers) |',
    '|---|--:|--:|--:|--:|',
  );
  for (const { id, label } of first.contenders) {
    if (!runs.some((run) => run.latency[id] || run.throughput[id])) continue;
    lines.push(
      `| ${label} | ${perRun((r) => fixed(r.latency[id]?.p50Us, 0))} | ${perRun((r) => times(r.latency[id]?.p50Ratio))} | ` +
        `${perRun((r) => fixed(r.latency[id]?.clientCpuUs, 0))} | ${perRun((r) => times(r.throughput[id]?.ratio))} |`,
    );
  }
  lines.push(
    '',
    '**Contention** (50 replicas, one key)',
    '',
    '| Contender | rounds with exactly one winner | decision p50 ms | p50 vs floor |',
    '|---|--:|--:|--:|',
  );
  for (const { id, label } of first.contenders) {
    if (!runs.some((run) => run.contention[id])) continue;
    lines.push(
      `| ${label} | ${perRun((r) => (r.contention[id] ? `${r.contention[id].rounds - r.contention[id].badRounds} of ${r.contention[id].rounds}` : '–'))} | ` +
        `${perRun((r) => r.contention[id]?.decisionP50Ms.toFixed(2) ?? '–')} | ${perRun((r) => times(r.contention[id]?.p50Ratio))} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
  if (positionals.length === 0) throw new Error('Give the runs to combine: bench/results/run-1.json …');
  const runs = positionals.map((file) => JSON.parse(readFileSync(file, 'utf8')) as BenchResults);
  const names = positionals.map((file) => file.replace(/^.*\//, '').replace(/\.json$/, ''));
  const out = values.out ?? 'bench/results/runs.md';
  const text = await prettier.format(render(runs, names), {
    ...(await prettier.resolveConfig(out)),
    filepath: out,
  });
  writeFileSync(out, text);
  process.stdout.write(text);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
