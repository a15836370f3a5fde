import { spawn } from 'node:child_process';
import type { Redis } from 'ioredis';

/** One command as MONITOR printed it: who sent it (`lua` for a script's own calls) and its words. */
export interface MonitoredCommand {
  source: string;
  words: string[];
}

/**
 * Records every command Redis executes while `phase` runs, with `redis-cli MONITOR`, between
 * `ECHO` markers sent on `marker` so each contender's share can be cut out. Returns the commands
 * per label, markers excluded.
 */
export async function captureCommands(
  port: number,
  marker: Redis,
  phase: (mark: (label: string, run: () => Promise<void>) => Promise<void>) => Promise<void>,
): Promise<Map<string, MonitoredCommand[]>> {
  const monitor = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'MONITOR'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let output = '';
  monitor.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const waitFor = async (text: string): Promise<void> => {
    for (let waited = 0; !output.includes(text); waited += 10) {
      if (waited > 10_000) throw new Error(`MONITOR never showed ${text}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const labels: string[] = [];
  try {
    await waitFor('OK');
    await phase(async (label, run) => {
      labels.push(label);
      await marker.echo(`bench-begin:${label}`);
      await run();
      await marker.echo(`bench-end:${label}`);
    });
    await waitFor(`bench-end:${labels[labels.length - 1]}`);
  } finally {
    const exited = new Promise((resolve) => monitor.once('exit', resolve));
    process.kill(monitor.pid!, 'SIGTERM');
    await exited;
  }
  return splitByMarker(output, labels);
}

const LINE = /^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/;
const WORD = /"((?:[^"\\]|\\.)*)"/g;

function splitByMarker(output: string, labels: string[]): Map<string, MonitoredCommand[]> {
  const byLabel = new Map<string, MonitoredCommand[]>();
  let current: MonitoredCommand[] | undefined;
  for (const line of output.split('\n')) {
    const match = LINE.exec(line.trim());
    if (!match) continue;
    const words = [...match[2].matchAll(WORD)].map((word) => word[1]);
    if (words[0]?.toUpperCase() === 'ECHO' && words[1]?.startsWith('bench-')) {
      const [edge, label] = [words[1].slice(6, words[1].indexOf(':')), words[1].slice(words[1].indexOf(':') + 1)];
      current = edge === 'begin' ? [] : undefined;
      if (current) byLabel.set(label, current);
      continue;
    }
    current?.push({ source: match[1], words });
  }
  for (const label of labels) if (!byLabel.has(label)) byLabel.set(label, []);
  return byLabel;
}

const KEYWORDS = new Set([
  'NX',
  'XX',
  'PX',
  'EX',
  'GET',
  'KEEPTTL',
  'LOAD',
  'FLUSH',
  'SETNAME',
  'SETINFO',
  'LIB-NAME',
  'LIB-VER',
]);

/**
 * A command with its values elided: keys become `<key>`, numbers `<n>`, other values `<value>`;
 * command names and option words stay. Calls made by a Lua script are marked `(lua)`.
 */
export function elide(command: MonitoredCommand, keyMark: string): string {
  const [name, ...args] = command.words;
  const upper = name.toUpperCase();
  const shown = [upper];
  if (upper === 'EVALSHA' || upper === 'EVAL') {
    const keyCount = Number(args[1]);
    shown.push(upper === 'EVAL' ? '<script>' : '<sha>', args[1]);
    shown.push(...args.slice(2, 2 + keyCount).map(() => '<key>'));
    shown.push(...args.slice(2 + keyCount).map(() => '<arg>'));
  } else {
    for (const arg of args) {
      if (KEYWORDS.has(arg.toUpperCase())) shown.push(arg.toUpperCase());
      else if (arg.includes(keyMark)) shown.push('<key>');
      else if (arg.length > 60 || arg.includes('\\n')) shown.push('<script>');
      else if (/^-?\d+$/.test(arg)) shown.push('<n>');
      else if (/^[a-z]+$/.test(arg) && arg.length <= 8)
        shown.push(arg); // a hash field or sub-command name
      else shown.push('<value>');
    }
  }
  return `${command.source === 'lua' ? '  (lua) ' : ''}${shown.join(' ')}`;
}
