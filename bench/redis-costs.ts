/**
 * What each Redis-side piece of a decorated call costs, and what leaner shapes of the same work
 * would: plain commands against the library's scripts, the run record as it is and packed into one
 * field, or sent beside the release instead of inside it. Raw ioredis, in this process, pinned with
 * redis-server on one core as the suite's latency scenario is, so Redis's work lands on the round trip.
 *
 *   node bench/.work/bench/redis-costs.js [--reps 5] [--ops 2000] [--out bench/results/redis-costs]
 *
 * (after `npm run bench` or `npx tsc -p bench/tsconfig.json`). Prints, and writes as .md and .json,
 * per variant: p50 of a sequential acquire + release and its ratio to `plain` in the same
 * repetition, Redis and client CPU per cycle, Redis's own byte and command-time counts, and the
 * bytes a lock name keeps (its run history) after one run and after thousands.
 */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import * as prettier from 'prettier';
import { holderToken, jobTickField, lockKeys } from '../src/core/keys';
import { runRecordFields } from '../src/core/fleet/fleet-records';
import { DEFAULT_LOCK_OPTIONS } from '../src/core/options/lock-options';
import { ACQUIRE, LuaScript, RELEASE_AND_RECORD, RELEASE_IF_OWNER } from '../src/core/redis/scripts';
import { TTL_MS } from './contenders';
import { accountRedis, keysOfName, type RedisAccount } from './monitor-capture';
import { pinToCpu, startBenchRedis } from './redis-server';
import { serverCpuUs } from './scenarios';
import { median, quantile } from './stats';

const JOB = 'BenchJobs.noop';
const REPLICA = `${hostname()}:${process.pid}`;
const { historyLength, historyRetentionMs, stateRetentionMs } = DEFAULT_LOCK_OPTIONS;

/** The pause check and the SET, nothing else: what ACQUIRE does for a job with no tick and no fencing. */
const PAUSE_THEN_SET = new LuaScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return -3 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`);

/** RELEASE_AND_RECORD with the record in one field (ARGV[5]) instead of eight. */
const RELEASE_AND_RECORD_PACKED = new LuaScript(`
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'run', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
`);

const SCRIPTS = [ACQUIRE, RELEASE_IF_OWNER, RELEASE_AND_RECORD, PAUSE_THEN_SET, RELEASE_AND_RECORD_PACKED];

let counter = 0;
/** A token as the library makes it with operations on: unique part, acquisition time, replica. */
const token = (): string => holderToken(`bench${(++counter).toString(36)}`, REPLICA, Date.now());

type Step = (client: Redis, key: string, token: string) => Promise<unknown>;

const setNx: Step = async (client, key, held) => {
  if ((await client.set(lockKeys('', key).lock, held, 'PX', TTL_MS, 'NX')) !== 'OK') throw new Error('not granted');
};

/** Redis 7: the SET answers with the holder's token when it does not take the lock (a pause could be a marker token). */
const setNxGet: Step = async (client, key, held) => {
  const previous = await client.call('SET', lockKeys('', key).lock, held, 'NX', 'PX', TTL_MS, 'GET');
  if (previous !== null) throw new Error('not granted');
};

const acquireScript: Step = async (client, key, held) => {
  const keys = lockKeys('', key);
  const reply = await client.evalsha(
    ACQUIRE.sha,
    3,
    keys.lock,
    keys.state,
    keys.paused,
    held,
    TTL_MS,
    '',
    '',
    jobTickField(JOB),
    60_000,
    stateRetentionMs,
    JOB,
  );
  if (Number(reply) !== 1) throw new Error('not granted');
};

const pauseThenSet: Step = async (client, key, held) => {
  const keys = lockKeys('', key);
  if (Number(await client.evalsha(PAUSE_THEN_SET.sha, 2, keys.lock, keys.paused, held, TTL_MS, JOB)) !== 1) {
    throw new Error('not granted');
  }
};

const releaseIfOwner: Step = (client, key, held) =>
  client.evalsha(RELEASE_IF_OWNER.sha, 1, lockKeys('', key).lock, held, 0);

/** The run record as the library builds it for a run that just ended well. */
const recordFields = (): string[] =>
  runRecordFields({
    job: JOB,
    replica: REPLICA,
    tick: undefined,
    trigger: 'schedule',
    attempt: 1,
    startedAt: Date.now(),
    durationMs: 0,
    outcome: 'ok',
    error: undefined,
    fencingToken: undefined,
  });

const releaseAndRecord: Step = (client, key, held) => {
  const keys = lockKeys('', key);
  return client.evalsha(
    RELEASE_AND_RECORD.sha,
    2,
    keys.lock,
    keys.runs,
    held,
    0,
    historyLength,
    historyRetentionMs,
    ...recordFields(),
  );
};

/**
 * The record packed into one field, without what the token already says (replica, start): job,
 * token, duration and outcome; error and fencing token only when set (neither is, here).
 */
const releaseAndRecordPacked: Step = (client, key, held) => {
  const keys = lockKeys('', key);
  const packed = `${JOB}\t${held}\t0\tok`;
  return client.evalsha(
    RELEASE_AND_RECORD_PACKED.sha,
    2,
    keys.lock,
    keys.runs,
    held,
    0,
    historyLength,
    historyRetentionMs,
    packed,
  );
};

/** The release script, then XADD and PEXPIRE of the record as plain commands, all in one write. */
const releaseThenRecord: Step = async (client, key, held) => {
  const keys = lockKeys('', key);
  const [[error]] = (await client
    .pipeline()
    .evalsha(RELEASE_IF_OWNER.sha, 1, keys.lock, held, 0)
    .xadd(keys.runs, 'MAXLEN', '~', historyLength, '*', ...recordFields())
    .pexpire(keys.runs, historyRetentionMs)
    .exec())!;
  if (error) throw error;
};

interface Variant {
  id: string;
  note: string;
  acquire: Step;
  release: Step;
}

const VARIANTS: Variant[] = [
  {
    id: 'plain',
    note: 'SET NX PX, then RELEASE_IF_OWNER: a decorated call with operations off',
    acquire: setNx,
    release: releaseIfOwner,
  },
  {
    id: 'acquire-script',
    note: 'ACQUIRE (pause check) instead of SET NX PX; release as plain',
    acquire: acquireScript,
    release: releaseIfOwner,
  },
  {
    id: 'record',
    note: 'SET NX PX; RELEASE_AND_RECORD (XADD of the 8-field record in the release)',
    acquire: setNx,
    release: releaseAndRecord,
  },
  {
    id: 'operations',
    note: 'ACQUIRE, then RELEASE_AND_RECORD: a decorated call with operations on (the default)',
    acquire: acquireScript,
    release: releaseAndRecord,
  },
  {
    id: 'pause-then-set',
    note: 'a script with only the pause check and the SET (no TIME, no state PEXPIRE); release as plain',
    acquire: pauseThenSet,
    release: releaseIfOwner,
  },
  {
    id: 'set-nx-get',
    note: 'SET NX PX GET (Redis 7; answers the holder, so a pause could be a marker token); release as plain',
    acquire: setNxGet,
    release: releaseIfOwner,
  },
  {
    id: 'record-packed',
    note: 'SET NX PX; RELEASE_AND_RECORD with the record packed in one field (job, token, duration, outcome)',
    acquire: setNx,
    release: releaseAndRecordPacked,
  },
  {
    id: 'record-beside',
    note: 'SET NX PX; RELEASE_IF_OWNER, XADD (8 fields) and PEXPIRE pipelined in one write',
    acquire: setNx,
    release: releaseThenRecord,
  },
  {
    id: 'operations-lean',
    note: 'pause-then-set, then the packed record: operations kept, with both proposals',
    acquire: pauseThenSet,
    release: releaseAndRecordPacked,
  },
];

interface Sample {
  p50Us: number;
  clientCpuUs: number;
  serverCpuUs: number;
}

async function slice(client: Redis, variant: Variant, key: string, ops: number, redisPid: number): Promise<Sample> {
  const samples = new Float64Array(ops);
  const cpu0 = process.cpuUsage();
  const server0 = serverCpuUs(redisPid);
  for (let i = 0; i < ops; i++) {
    const started = performance.now();
    const held = token();
    await variant.acquire(client, key, held);
    await variant.release(client, key, held);
    samples[i] = (performance.now() - started) * 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    p50Us: quantile(samples, 0.5),
    clientCpuUs: (cpu.user + cpu.system) / ops,
    serverCpuUs: (serverCpuUs(redisPid) - server0) / ops,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { reps: { type: 'string' }, ops: { type: 'string' }, out: { type: 'string' } },
  });
  const reps = Number(values.reps ?? 5);
  const ops = Number(values.ops ?? 2000);
  const out = resolve(values.out ?? resolve(__dirname, '..', '..', 'results', 'redis-costs'));
  const redis = await startBenchRedis();
  const client = redis.client();
  const admin = redis.client();
  try {
    await Promise.all([client.ping(), admin.ping()]);
    await Promise.all(SCRIPTS.map((script) => script.load(client)));
    const pinned = pinToCpu(redis.pid, 0) && pinToCpu(process.pid, 0);
    const perRep = new Map<string, Sample[]>(VARIANTS.map((v) => [v.id, []]));
    for (const variant of VARIANTS) await slice(client, variant, `costs:${variant.id}`, 500, redis.pid); // warm-up
    for (let rep = 0; rep < reps; rep++) {
      const order = [...VARIANTS.slice(rep % VARIANTS.length), ...VARIANTS.slice(0, rep % VARIANTS.length)];
      for (const variant of order) {
        perRep.get(variant.id)!.push(await slice(client, variant, `costs:${variant.id}`, ops, redis.pid));
      }
      process.stderr.write(`rep ${rep + 1}/${reps}\n`);
    }
    const accounts: Record<string, RedisAccount> = {};
    for (const variant of VARIANTS) {
      accounts[variant.id] = await accountRedis(admin, 500, () =>
        slice(client, variant, `costs:${variant.id}`, 500, redis.pid).then(() => undefined),
      );
    }
    // What a lock name keeps: after the cycles above (a history at its cap), and after one run.
    const kept: Record<string, { afterMany: number; afterOne: number }> = {};
    for (const variant of VARIANTS) {
      const fresh = `costs:once:${variant.id}`;
      await slice(client, variant, fresh, 1, redis.pid);
      const bytes = async (name: string): Promise<number> =>
        Object.values(await keysOfName(admin, name)).reduce((sum, key) => sum + key.bytes, 0);
      kept[variant.id] = { afterMany: await bytes(`costs:${variant.id}`), afterOne: await bytes(fresh) };
    }
    const plain = perRep.get('plain')!;
    const rows = VARIANTS.map((variant) => {
      const samples = perRep.get(variant.id)!;
      const account = accounts[variant.id];
      const scriptUs = Object.entries(account.commands)
        .filter(([name]) => name === 'evalsha')
        .reduce((sum, [, command]) => sum + command.usecPerCycle, 0);
      return {
        id: variant.id,
        note: variant.note,
        p50Us: median(samples.map((s) => s.p50Us)),
        p50VsPlain: median(samples.map((s, rep) => s.p50Us / plain[rep].p50Us)),
        serverCpuUs: median(samples.map((s) => s.serverCpuUs)),
        clientCpuUs: median(samples.map((s) => s.clientCpuUs)),
        bytesIn: account.bytesInPerCycle,
        commandUs: Object.values(account.commands).reduce((sum, command) => sum + command.usecPerCycle, 0) - scriptUs,
        scriptUs,
        kept: kept[variant.id],
        account,
      };
    });
    const fixed = (value: number, digits = 0): string => value.toFixed(digits);
    const lines = [
      `Redis-side costs, ${reps} interleaved repetitions of ${ops} sequential acquire + release per variant, raw ioredis, ` +
        `${pinned ? 'client and redis-server pinned to one core' : 'unpinned'}, Redis ${redis.version}, Node ${process.version}. ` +
        '"vs plain": median of per-repetition ratios. Redis time from INFO commandstats over 500 more cycles: ' +
        'EVALSHA µs include the commands the script calls.',
      '',
      '| Variant | p50 µs | p50 vs plain | Redis CPU µs/cycle | client CPU µs/cycle | bytes to Redis | EVALSHA µs | plain commands µs | kept per lock name: after 1 run, after thousands (bytes) | What it sends |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
      ...rows.map(
        (row) =>
          `| \`${row.id}\` | ${fixed(row.p50Us)} | ${row.p50VsPlain.toFixed(2)}× | ${fixed(row.serverCpuUs, 1)} | ` +
          `${fixed(row.clientCpuUs, 1)} | ${fixed(row.bytesIn)} | ${fixed(row.scriptUs, 1)} | ${fixed(row.commandUs, 1)} | ` +
          `${row.kept.afterOne.toLocaleString('en-US')}, ${row.kept.afterMany.toLocaleString('en-US')} | ${row.note} |`,
      ),
      '',
    ];
    // Written as the repository's Prettier settings would, like the suite's results.
    const format = async (file: string, text: string): Promise<string> =>
      prettier.format(text, { ...(await prettier.resolveConfig(file)), filepath: file });
    const markdown = await format(`${out}.md`, lines.join('\n'));
    process.stdout.write(markdown);
    const results = { date: new Date().toISOString(), reps, ops, pinned, redis: redis.version, rows };
    writeFileSync(`${out}.md`, markdown);
    writeFileSync(`${out}.json`, await format(`${out}.json`, JSON.stringify(results)));
  } finally {
    client.disconnect();
    admin.disconnect();
    await redis.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
