#!/usr/bin/env node
// Renders bench/results/latest.json as an SVG bar chart: per contender, its p50 latency and its
// throughput, each as a ratio to the floor (raw SET NX PX + EVALSHA) measured in the same run.
// Usage: node bench/render-chart.mjs [results.json] [chart.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const input = process.argv[2] ?? join(here, 'results', 'latest.json');
const output = process.argv[3] ?? input.replace(/\.json$/, '.svg');
const results = JSON.parse(readFileSync(input, 'utf8'));

const rows = results.contenders
  .map(({ id, label, kind }) => ({
    label,
    kind,
    latency: results.latency?.[id]?.p50Ratio,
    throughput: results.throughput?.[id]?.ratio,
  }))
  .filter((row) => row.latency !== undefined || row.throughput !== undefined);

const COLORS = { latency: '#d9822b', throughput: '#2b7bd9' };
// Labels are set in a 12 px sans-serif: about 6.3 px a character leaves room for the longest.
const labelWidth = Math.max(290, Math.ceil(6.3 * Math.max(...rows.map((row) => row.label.length))));
const width = labelWidth + 570;
const plotLeft = labelWidth + 10;
const plotWidth = width - plotLeft - 70;
const barHeight = 13;
const rowHeight = 2 * barHeight + 14;
const top = 78;
const height = top + rows.length * rowHeight + 40;
const max = Math.max(2, ...rows.flatMap((row) => [row.latency ?? 0, row.throughput ?? 0])) * 1.05;
const x = (value) => Math.round((plotLeft + (value / max) * plotWidth) * 10) / 10;
const escape = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const parts = [];
parts.push(
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
  `<rect width="100%" height="100%" fill="#ffffff"/>`,
  `<text x="16" y="24" font-size="15" font-weight="600">Lock acquire + release vs the floor (ioredis SET NX PX + EVALSHA = 1.0)</text>`,
  `<text x="16" y="42" fill="#555">${escape(`${results.machine.cpu}, ${results.machine.cores} cores · Node ${results.machine.node} · Redis ${results.machine.redis} · ${results.date.slice(0, 10)} · medians of ${results.config.reps} interleaved reps`)}</text>`,
  `<rect x="16" y="52" width="12" height="10" fill="${COLORS.latency}"/><text x="33" y="61">p50 latency ratio (lower is better)</text>`,
  `<rect x="260" y="52" width="12" height="10" fill="${COLORS.throughput}"/><text x="277" y="61">throughput ratio, 64 workers (higher is better)</text>`,
);
for (let tick = 0; tick <= max; tick += max > 6 ? 1 : 0.5) {
  const tx = x(tick);
  parts.push(
    `<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${height - 34}" stroke="${tick === 1 ? '#222' : '#e4e4e4'}" stroke-width="${tick === 1 ? 1.5 : 1}"/>`,
    `<text x="${tx}" y="${height - 20}" text-anchor="middle" fill="#555">${tick}×</text>`,
  );
}
rows.forEach((row, i) => {
  const y = top + i * rowHeight;
  parts.push(
    `<text x="${labelWidth}" y="${y + barHeight + 5}" text-anchor="end" font-weight="${row.kind === 'library' ? 600 : 400}">${escape(row.label)}</text>`,
  );
  [
    ['latency', row.latency],
    ['throughput', row.throughput],
  ].forEach(([kind, value], j) => {
    if (value === undefined) return;
    const by = y + j * barHeight;
    parts.push(
      `<rect x="${plotLeft}" y="${by}" width="${Math.max(1, x(value) - plotLeft)}" height="${barHeight - 2}" fill="${COLORS[kind]}"/>`,
      `<text x="${x(value) + 4}" y="${by + barHeight - 3}" fill="#333">${value.toFixed(2)}</text>`,
    );
  });
});
parts.push('</svg>');
writeFileSync(output, `${parts.join('\n')}\n`);
console.error(`chart: ${output}`);
