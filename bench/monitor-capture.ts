import { spawn } from 'node:child_process';
import type { Redis } from 'ioredis';
import { median } from './stats';

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
    if (labels.length) await waitFor(`bench-end:${labels[labels.length - 1]}`);
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
  'MAXLEN',
  '~',
  '*',
]);

/** The size of a value as MONITOR quoted it (`\"`, `\n`, `\xHH`… are one byte each). */
function rawLength(word: string): number {
  return Buffer.byteLength(word.replace(/\\x[0-9a-fA-F]{2}|\\./g, '_'));
}

/** How many bytes a command takes on the wire from the client (RESP: an array of bulk strings). */
export function requestBytes(command: MonitoredCommand): number {
  let bytes = `*${command.words.length}\r\n`.length;
  for (const word of command.words) {
    const length = rawLength(word);
    bytes += `$${length}\r\n`.length + length + 2;
  }
  return bytes;
}

/** Runs of the same elided word, four or more, shown once with their count: `<arg> ×16`. */
function squeeze(words: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length;) {
    let j = i;
    while (j < words.length && words[j] === words[i]) j++;
    if (j - i >= 4) out.push(`${words[i]} ×${j - i}`);
    else out.push(...words.slice(i, j));
    i = j;
  }
  return out;
}

/**
 * A command with its values elided: keys become `<key>`, numbers `<n>`, empty values `''`, other
 * values `<value>`; command names, option words and field names stay. A script called by SHA is
 * named when `scripts` knows it (`EVALSHA <ACQUIRE> …`). Calls made by a Lua script are marked
 * `(lua)`; the others end with their size on the wire, e.g. `(96 B)`.
 */
export function elide(
  command: MonitoredCommand,
  keyMark: string,
  scripts: ReadonlyMap<string, string> = new Map(),
): string {
  const [name, ...args] = command.words;
  const upper = name.toUpperCase();
  const shown = [upper];
  if (upper === 'EVALSHA' || upper === 'EVAL') {
    const keyCount = Number(args[1]);
    const script = upper === 'EVALSHA' ? scripts.get(args[0]) : undefined;
    shown.push(upper === 'EVAL' ? '<script>' : script ? `<${script}>` : '<sha>', args[1]);
    shown.push(...args.slice(2, 2 + keyCount).map(() => '<key>'));
    shown.push(...args.slice(2 + keyCount).map(() => '<arg>'));
  } else {
    for (const arg of args) {
      if (KEYWORDS.has(arg.toUpperCase())) shown.push(arg.toUpperCase());
      else if (arg.includes(keyMark)) shown.push('<key>');
      else if (arg === '') shown.push("''");
      else if (arg.length > 60 || arg.includes('\\n')) shown.push('<script>');
      else if (/^-?\d+$/.test(arg)) shown.push('<n>');
      else if (/^[a-z][a-zA-Z]{0,11}$/.test(arg))
        shown.push(arg); // a hash or stream field, or a sub-command name
      else shown.push('<value>');
    }
  }
  const text = squeeze(shown).join(' ');
  return command.source === 'lua' ? `  (lua) ${text}` : `${text} (${requestBytes(command)} B)`;
}

/** What Redis counted while some cycles ran: bytes in and out, and each command's calls and time. */
export interface RedisAccount {
  cycles: number;
  /** How many samples of `cycles` cycles the figures are the medians of (1 for one sample). */
  samples?: number;
  /** Bytes Redis read from clients per cycle (the requests). */
  bytesInPerCycle: number;
  /** Bytes Redis wrote to clients per cycle (the replies). */
  bytesOutPerCycle: number;
  /** Per command, Lua's own calls included (INFO commandstats): calls and µs spent, per cycle. */
  commands: Record<string, { callsPerCycle: number; usecPerCycle: number }>;
}

interface Counters {
  reply: string;
  netIn: number;
  netOut: number;
  commands: Map<string, { calls: number; usec: number }>;
}

const INFO_REQUEST = ['INFO', 'stats', 'commandstats'];

async function counters(admin: Redis): Promise<Counters> {
  const reply = (await admin.call(...(INFO_REQUEST as [string, ...string[]]))) as string;
  const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(reply)?.[1] ?? NaN);
  const commands = new Map<string, { calls: number; usec: number }>();
  for (const match of reply.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commands.set(match[1], { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return { reply, netIn: field('total_net_input_bytes'), netOut: field('total_net_output_bytes'), commands };
}

/**
 * Redis's own accounting of `cycles` acquire + release cycles run by `run`, from `INFO stats` and
 * `INFO commandstats` read on `admin` before and after (nothing else may talk to Redis meanwhile).
 * The first read's reply and the second read's request are taken out of the byte counts.
 */
export async function accountRedis(admin: Redis, cycles: number, run: () => Promise<void>): Promise<RedisAccount> {
  const before = await counters(admin);
  await run();
  const after = await counters(admin);
  const infoRequest = requestBytes({ source: '', words: INFO_REQUEST });
  const firstReply = Buffer.byteLength(before.reply);
  const infoReply = `$${firstReply}\r\n`.length + firstReply + 2;
  const commands: RedisAccount['commands'] = {};
  for (const [name, now] of after.commands) {
    if (name === 'info') continue;
    const was = before.commands.get(name) ?? { calls: 0, usec: 0 };
    if (now.calls === was.calls) continue;
    commands[name] = { callsPerCycle: (now.calls - was.calls) / cycles, usecPerCycle: (now.usec - was.usec) / cycles };
  }
  return {
    cycles,
    bytesInPerCycle: (after.netIn - before.netIn - infoRequest) / cycles,
    bytesOutPerCycle: (after.netOut - before.netOut - infoReply) / cycles,
    commands,
  };
}

/**
 * The median of each figure over samples taken at different moments: a single sample moves with
 * the machine's load (on a shared VM, every command Redis runs, whoever sent it, can take twice as
 * long for a while), so one contender's sample against another's compares moments, not contenders.
 */
export function medianAccount(samples: readonly RedisAccount[]): RedisAccount {
  const names = new Set(samples.flatMap((sample) => Object.keys(sample.commands)));
  const commands: RedisAccount['commands'] = {};
  for (const name of names) {
    const callsPerCycle = median(samples.map((s) => s.commands[name]?.callsPerCycle ?? 0));
    // A command of some samples only (a script's first EVAL) is not part of a cycle.
    if (callsPerCycle === 0) continue;
    commands[name] = { callsPerCycle, usecPerCycle: median(samples.map((s) => s.commands[name]?.usecPerCycle ?? 0)) };
  }
  return {
    cycles: samples[0].cycles,
    samples: samples.length,
    bytesInPerCycle: median(samples.map((s) => s.bytesInPerCycle)),
    bytesOutPerCycle: median(samples.map((s) => s.bytesOutPerCycle)),
    commands,
  };
}

/** The keys left under one lock name (`{name}` hash tag) and the bytes Redis uses for each (MEMORY USAGE). */
export async function keysOfName(admin: Redis, name: string): Promise<Record<string, { type: string; bytes: number }>> {
  const found: Record<string, { type: string; bytes: number }> = {};
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `*{${name.replace(/[*?[\]\\]/g, '\\$&')}}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await admin.type(key);
      const bytes = Number(await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
      found[key.replace(name, '<name>')] = { type, bytes };
    }
  } while (cursor !== '0');
  return found;
}
