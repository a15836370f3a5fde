import { redactUrl } from '../core/validation';

/** A mistake on the command line: reported in one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** What the command line asks for. */
export type Command =
  | { readonly name: 'help' }
  | { readonly name: 'status' }
  | { readonly name: 'history'; readonly job: string; readonly limit: number; readonly key: string | undefined }
  | {
      readonly name: 'missed';
      readonly job: string;
      /** Undefined: what the kept history covers, at most a day. */
      readonly since: TimeArgument | undefined;
      readonly until: TimeArgument;
      readonly key: string | undefined;
    }
  | { readonly name: 'release'; readonly key: string }
  | { readonly name: 'pause'; readonly job: string; readonly by: string | undefined; readonly note: string | undefined }
  | {
      readonly name: 'trigger';
      readonly job: string;
      readonly occurrence: number | undefined;
      readonly force: boolean;
      readonly by: string | undefined;
    }
  | { readonly name: 'resume'; readonly job: string }
  | { readonly name: 'dashboard'; readonly host: string; readonly port: number }
  | { readonly name: 'forget'; readonly job: string };

/** A point in time as typed: a duration back from now (`24h`), or an ISO date. */
export type TimeArgument = { readonly ago: number } | { readonly at: number };

export interface Invocation {
  readonly command: Command;
  readonly url: string | undefined;
  readonly prefix: string | undefined;
  readonly json: boolean;
  /** Bound on connecting, and on each Redis command. */
  readonly timeoutMs: number;
}

export const USAGE = `Usage: dpa-distributed-lock-cron <command> [options]

See and steer the replicas of an app that uses dpa-distributed-lock-cron.

Commands:
  status                     jobs (schedule, pause, last run) and the locks held now
  history <job> [--limit N]  the job's latest runs, newest first (default 20)
  missed <job> [--since TIME] [--until now]
                             occurrences of a @Cron job that ran on no replica, since
                             its first declaration (default --since: what the kept
                             history covers, at most 24h)
  release <key>              delete the lock <key> whoever holds it (its holder is not told)
  pause <job> [--by NAME] [--note TEXT]
                             stop every replica from running <job> until resume; the
                             note (why) is shown by status
  resume <job>               let the replicas run <job> again
  trigger <job> [--occurrence ISO-8601] [--force] [--by NAME]
                             run <job> now on one live replica that takes triggers
                             (manualTriggers), or run a missed occurrence of it; exits 0
                             once a replica started it, 1 when none did within --timeout
  forget <job>               drop the declaration of a job no replica runs any more
  dashboard [--port N] [--host ADDRESS]
                             serve the dashboard, read-only, at http://127.0.0.1:N/
                             (default port 8700) until Ctrl+C

Options:
  --url redis://[user:password@]host:port/db
                   where Redis is; by default REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_PASSWORD,
                   REDIS_DB, REDIS_SENTINELS, REDIS_CLUSTER_NODES... as the module reads them
  --prefix PREFIX  the app's keyPrefix (default REDIS_KEY_PREFIX, else none)
  --key NAME       history, missed: the lock name, for a job that computes it per call
  --json           print JSON instead of tables
  --timeout MS     give up on Redis after this long (default 5000)
  --help           print this help

A job is named Class.method, or by its schedule's name (@Cron({ name })); <key> is the lock name
given to @DistributedLock. Times in --since and --until: a duration back from now (90s, 30m, 24h,
7d), an ISO date, or "now".
Exit codes: 0 done, 1 failed (Redis unreachable, unknown job...), 2 bad command line.`;

const COMMANDS = [
  'status',
  'history',
  'missed',
  'release',
  'pause',
  'resume',
  'trigger',
  'forget',
  'dashboard',
] as const;
/** Options that take a value, and the commands they belong to (undefined: every command). */
const VALUE_OPTIONS: Record<string, readonly string[] | undefined> = {
  url: undefined,
  prefix: undefined,
  timeout: undefined,
  limit: ['history'],
  key: ['history', 'missed'],
  since: ['missed'],
  until: ['missed'],
  by: ['pause', 'trigger'],
  occurrence: ['trigger'],
  port: ['dashboard'],
  host: ['dashboard'],
  note: ['pause'],
};
const FLAGS = ['json', 'help', 'force'];
const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Reads the command line (without `node` and the script). Throws a `UsageError` naming the mistake. */
export function parseArguments(args: readonly string[]): Invocation {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '-h') {
      flags.add('help');
      continue;
    }
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    if (FLAGS.includes(name)) {
      if (equals !== -1) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
    } else if (name in VALUE_OPTIONS) {
      const value = equals !== -1 ? arg.slice(equals + 1) : args[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      values.set(name, value);
    } else {
      throw new UsageError(`unknown option ${JSON.stringify(arg.slice(0, equals === -1 ? undefined : equals))}`);
    }
  }

  const common = {
    url: values.get('url'),
    prefix: values.get('prefix'),
    json: flags.has('json'),
    timeoutMs: values.has('timeout') ? positiveInteger('--timeout', values.get('timeout')!) : 5000,
  };
  if (flags.has('help')) return { command: { name: 'help' }, ...common };
  const [name, ...operands] = positionals;
  if (name === undefined) throw new UsageError(`no command given (one of ${COMMANDS.join(', ')})`);
  if (!(COMMANDS as readonly string[]).includes(name)) {
    throw new UsageError(`unknown command ${JSON.stringify(name)} (one of ${COMMANDS.join(', ')})`);
  }
  if (flags.has('force') && name !== 'trigger') throw new UsageError(`--force does not apply to ${name}`);
  for (const option of values.keys()) {
    const only = VALUE_OPTIONS[option];
    if (only && !only.includes(name)) throw new UsageError(`--${option} does not apply to ${name}`);
  }
  const expected = name === 'status' || name === 'dashboard' ? 0 : 1;
  if (operands.length !== expected) {
    const what = expected === 0 ? 'no argument' : name === 'release' ? 'one lock name' : 'one job name';
    const got = operands.length === 0 ? 'none' : operands.map(shown).join(' ');
    throw new UsageError(`${name} takes ${what}, got ${got}`);
  }
  const [operand] = operands;
  return { command: command(name as (typeof COMMANDS)[number], operand, values, flags), ...common };
}

function command(
  name: (typeof COMMANDS)[number],
  operand: string,
  values: Map<string, string>,
  flags: Set<string>,
): Command {
  switch (name) {
    case 'status':
      return { name };
    case 'dashboard': {
      const port = values.has('port') ? Number(values.get('port')) : 8700;
      if (!/^\d+$/.test(values.get('port') ?? '8700') || port > 65_535) {
        throw new UsageError(`--port must be a port number (0 to 65535), got ${shown(values.get('port')!)}`);
      }
      return { name, host: values.get('host') ?? '127.0.0.1', port };
    }
    case 'history':
      return {
        name,
        job: operand,
        limit: values.has('limit') ? positiveInteger('--limit', values.get('limit')!) : 20,
        key: values.get('key'),
      };
    case 'missed':
      return {
        name,
        job: operand,
        since: values.has('since') ? timeArgument('--since', values.get('since')!) : undefined,
        until: timeArgument('--until', values.get('until') ?? 'now'),
        key: values.get('key'),
      };
    case 'release':
      return { name, key: operand };
    case 'pause':
      return { name, job: operand, by: values.get('by'), note: values.get('note') };
    case 'trigger': {
      const raw = values.get('occurrence');
      const occurrence = raw === undefined ? undefined : /^\d{4}-\d{2}-\d{2}T/.test(raw) ? Date.parse(raw) : NaN;
      if (Number.isNaN(occurrence)) {
        throw new UsageError(`--occurrence must be an ISO-8601 date and time, got ${shown(raw!)}`);
      }
      return { name, job: operand, occurrence, force: flags.has('force'), by: values.get('by') };
    }
    case 'resume':
    case 'forget':
      return { name, job: operand };
  }
}

/** A value typed on the command line, quoted, with a URL's credentials masked: it may be a mistyped --url. */
function shown(raw: string): string {
  return JSON.stringify(redactUrl(raw));
}

function positiveInteger(option: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value === 0) {
    throw new UsageError(`${option} must be a positive integer, got ${shown(raw)}`);
  }
  return value;
}

function timeArgument(option: string, raw: string): TimeArgument {
  if (raw === 'now') return { ago: 0 };
  const duration = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(raw);
  if (duration) return { ago: Math.round(Number(duration[1]) * UNITS_MS[duration[2]]) };
  const at = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isFinite(at)) return { at };
  throw new UsageError(
    `${option} must be a duration back from now (90s, 30m, 24h, 7d), an ISO date or "now", got ${shown(raw)}`,
  );
}

/** The time a `TimeArgument` names, from `now`. */
export function timeOf(time: TimeArgument, now: number): number {
  return 'at' in time ? time.at : now - time.ago;
}
