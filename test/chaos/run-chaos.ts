/**
 * The long chaos run, as a command:
 *   npx tsc -p test/chaos/tsconfig.json && node .chaos/build/test/chaos/run-chaos.js --minutes 10 --replicas 5
 * Options: --minutes N (fault phase, default 10, at most 120), --replicas N (default 5, 1 to 9),
 * --seed N (replays the fault choices), --ttl MS (default 1500), --out FILE (default
 * test/chaos/results/latest.md), --source TEXT (which library code ran; default: the git commit,
 * and whether src/ has uncommitted changes). Prints the summary table, writes it to --out, and exits with 1
 * when a check fails. The logs stay in .chaos/runs/<time>-long/.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { checkRun } from './chaos-checker';
import { formatReport, violationCount } from './chaos-report';
import { CHAOS_DIR, REPO_ROOT } from './chaos-build';
import { FaultDriver } from './fault-driver';

function parseArguments(argv: string[]): Record<string, string> {
  const parsed: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (!name.startsWith('--') || value === undefined) throw new Error(`Expected --name value pairs, got "${name}"`);
    parsed[name.slice(2)] = value;
  }
  return parsed;
}

/** The commit the library was built from, and whether src/ differed from it. */
function describeSource(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8' }).trim();
    const dirty = git('status', '--porcelain', '--', 'src') !== '';
    return `commit ${git('log', '-1', '--format=%h %s')}${dirty ? ', with uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function integer(args: Record<string, string>, name: string, fallback: number, min: number, max: number): number {
  const value = args[name] === undefined ? fallback : Number(args[name]);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${args[name]}`);
  }
  return value;
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const minutes = integer(args, 'minutes', 10, 1, 120);
  const replicas = integer(args, 'replicas', 5, 1, 9);
  const seed = integer(args, 'seed', Date.now() % 1_000_000, 0, 2 ** 31 - 1);
  const ttlMs = integer(args, 'ttl', 1500, 300, 60_000);
  const out = args.out ?? join(REPO_ROOT, 'test', 'chaos', 'results', 'latest.md');
  const command =
    'npx tsc -p test/chaos/tsconfig.json && node .chaos/build/test/chaos/run-chaos.js ' +
    `--minutes ${minutes} --replicas ${replicas} --seed ${seed} --ttl ${ttlMs}`;
  const runDir = join(CHAOS_DIR, 'runs', `${new Date().toISOString().replace(/[:.]/g, '-')}-long`);
  const source = args.source ?? describeSource();
  const startedAt = new Date();
  console.log(`chaos run: ${command}\nlibrary: ${source}\nlogs: ${runDir}`);

  await new FaultDriver({
    replicas,
    faultPhaseMs: minutes * 60_000,
    order: 'shuffled',
    seed,
    ttlMs,
    runDir,
    command,
    progress: (line) => console.log(`[${new Date().toISOString()}] ${line}`),
  }).run();

  const report = checkRun(runDir);
  const table = formatReport(report);
  console.log(`\n${table}`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    [
      '# Chaos run',
      '',
      `Started ${startedAt.toISOString()}, ${replicas} replicas, ${minutes} min of faults, seed ${seed}, on ${process.platform} node ${process.version}.`,
      '',
      `Library: ${source}.`,
      '',
      'Reproduce with:',
      '',
      '```sh',
      command,
      '```',
      '',
      `Logs: \`${relative(REPO_ROOT, runDir)}/\` (not kept in git).`,
      '',
      table,
      '',
    ].join('\n'),
  );
  console.log(`\nwritten to ${relative(REPO_ROOT, out)}`);
  process.exitCode = violationCount(report) === 0 ? 0 : 1;
}

// A Ctrl-C must still run the exit hooks that kill the replicas and redis-server by PID.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main().catch((error: unknown) => {
  console.error(error);
  process.exit(2);
});
