/**
 * What a job policy adds to each run of a `@Cron` job, on the wire: the commands a scheduled run
 * sends without a policy (the acquisition script with its tick, then the release with the run
 * record) against those it sends with any policy (the claim in the ledger, the ledger write, the
 * release with the record), and the floor (`SET NX PX` + compare-and-delete), timed in the same
 * repetitions; plus what a replica sends in the background for such a job (a look at the ledger,
 * a heartbeat) and what naming an occurrence under a daylight-saving policy costs in CPU. Raw
 * ioredis through the library's own typed script wrappers, in this process, pinned with
 * redis-server on one core as the suite's latency scenario is.
 *
 *   node bench/.work/bench/policy-costs.js [--reps 5] [--ops 2000] [--out bench/results/policy-costs]
 *
 * (after `npm run bench` or `npx tsc -p bench/tsconfig.json`).
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { LockEngine } from '../src/core';
import { SYSTEM_CLOCK } from '../src/core/clock';
import { CronSchedule } from '../src/core/jobs/cron-schedule';
import { JobDefinition } from '../src/core/jobs/job-definition';
import { heartbeatKeyOf, INSTANCE_ID, jobSinceField, ledgerKeysOf, runsKeyOf } from '../src/core/keys';
import { lockRequest } from '../src/core/locks/lock-request';
import { resolveLockOptions } from '../src/core/options/resolve-options';
import { runRecordFields } from '../src/core/fleet/fleet-records';
import {
  LOCK_SCRIPTS,
  POLICY_SCRIPTS,
  RELEASE_IF_OWNER,
  sendAcquire,
  sendClaimOccurrence,
  sendReadLedger,
  sendReleaseAndRecord,
  sendSettleOccurrence,
} from '../src/core/redis/scripts';
import { TTL_MS } from './contenders';
import { pinToCpu, startBenchRedis } from './redis-server';
import { median } from './stats';

const options = { ...resolveLockOptions({ url: 'redis://unused' }), instanceId: INSTANCE_ID };
const hourly = () => new CronSchedule('0 0 * * * *', { timeZone: 'UTC' });
const plainJob = new JobDefinition({ name: 'Bench.plain', key: 'bench:plain', ttlMs: TTL_MS, schedule: hourly });
const policyJob = new JobDefinition({
  name: 'Bench.policy',
  key: 'bench:policy',
  ttlMs: TTL_MS,
  schedule: hourly,
  policies: { retry: { attempts: 3, backoffMs: 1_000 } },
});

/** A distinct occurrence per cycle, increasing, within the state's bounds. */
let nextTick = Date.now() - 3_600_000;

type Cycle = (client: Redis) => Promise<void>;

const floor: Cycle = async (client) => {
  const token = `t${++nextTick}`;
  await client.set('lock:{bench:floor}', token, 'PX', TTL_MS, 'NX');
  await client.evalsha(RELEASE_IF_OWNER.sha, 1, 'lock:{bench:floor}', token, 0);
};

/** A run record as the library writes it for a run that just ended well. */
function record(job: JobDefinition, tick: number, lockKey: string) {
  const fields = runRecordFields({
    job: job.name,
    replica: options.replicaName,
    tick,
    startedAt: Date.now(),
    durationMs: 1,
    outcome: 'ok',
    error: undefined,
    fencingToken: undefined,
    trigger: 'schedule',
    attempt: 1,
  });
  const { historyLength, historyRetentionMs } = options;
  return { streamKey: runsKeyOf(lockKey), fields, maxLength: historyLength, retentionMs: historyRetentionMs };
}

const withoutPolicy: Cycle = async (client) => {
  const tick = ++nextTick;
  const request = lockRequest(options, 'bench:plain', TTL_MS, false, plainJob.occurrence(tick, 'schedule', 1));
  const granted = Number(await sendAcquire(client, false, request));
  if (granted !== 1) throw new Error(`not granted: ${granted}`);
  await sendReleaseAndRecord(client, false, request.lockKey, request.token, 0, record(plainJob, tick, request.lockKey));
};

const withPolicy: Cycle = async (client) => {
  const tick = ++nextTick;
  const request = lockRequest(options, 'bench:policy', TTL_MS, false, policyJob.occurrence(tick, 'schedule', 1));
  const claim = request.claim!;
  const granted = Number(await sendClaimOccurrence(client, false, request, claim));
  if (granted !== 1) throw new Error(`not granted: ${granted}`);
  const { occurrencesKey, attemptsKey, member, keepMs } = claim;
  const settled = {
    occurrencesKey,
    attemptsKey,
    member,
    tick,
    attempt: 1,
    status: 'ok' as const,
    trigger: 'schedule' as const,
    keepMs,
  };
  await sendSettleOccurrence(client, false, settled);
  await sendReleaseAndRecord(
    client,
    false,
    request.lockKey,
    request.token,
    0,
    record(policyJob, tick, request.lockKey),
  );
};

const look: Cycle = async (client) => {
  const lockKey = 'lock:{bench:policy}';
  const { occurrences, attempts } = ledgerKeysOf(lockKey);
  await sendReadLedger(client, false, {
    stateKey: `${lockKey}:state`,
    occurrencesKey: occurrences,
    attemptsKey: attempts,
    job: policyJob.name,
    tickField: 'tick:Bench.policy',
    sinceField: jobSinceField(policyJob.name),
    definition: '0 0 * * * * UTC',
    from: Date.now() - 60_000,
    limit: 20_000,
    keepMs: options.stateRetentionMs,
  });
};

const heartbeat: Cycle = async (client) => {
  await client.set(heartbeatKeyOf('', INSTANCE_ID), options.replicaName, 'PX', 6_000);
};

/**
 * The library running a job with the same policy, one occurrence after another: its engine's clock
 * moves one second, one occurrence of its every-second schedule, before each run. It sends the
 * three scripts `cron-job-policy` sends (CLAIM_OCCURRENCE, SETTLE_OCCURRENCE, RELEASE_AND_RECORD),
 * the ledger write pipelined with the release instead of awaited before it.
 */
let simulatedNow = Date.now() - 12 * 3_600_000;
let engine: LockEngine | undefined;
const libraryJob = new JobDefinition({
  name: 'Bench.libraryPolicy',
  key: 'bench:library-policy',
  ttlMs: TTL_MS,
  schedule: () => new CronSchedule('* * * * * *', { timeZone: 'UTC' }),
  policies: { retry: { attempts: 3, backoffMs: 1_000 } },
});
const noop = (): boolean => true;

const libraryWithPolicy: Cycle = async () => {
  simulatedNow += 1_000;
  if ((await engine!.runDefinedJob(libraryJob, noop)) !== true) throw new Error('the library did not run the job');
};

const CYCLES: Record<string, { label: string; cycle: Cycle }> = {
  floor: { label: 'floor: SET NX PX + EVALSHA compare-and-delete', cycle: floor },
  'cron-job': {
    label: '@Cron job, no policy: EVALSHA ACQUIRE (tick) + EVALSHA RELEASE_AND_RECORD',
    cycle: withoutPolicy,
  },
  'cron-job-policy': {
    label:
      '@Cron job with any policy: EVALSHA CLAIM_OCCURRENCE + EVALSHA SETTLE_OCCURRENCE + EVALSHA RELEASE_AND_RECORD',
    cycle: withPolicy,
  },
  'library-policy': {
    label: 'this library: runDefinedJob of a job with a retry policy, the same three scripts',
    cycle: libraryWithPolicy,
  },
  look: { label: 'background, per look (every period, 1 s to 60 s): EVALSHA READ_LEDGER', cycle: look },
  heartbeat: { label: 'background, every 2 s per process: SET PX of the heartbeat', cycle: heartbeat },
};

/** CPU per call of naming an occurrence, without and with a daylight-saving policy (µs). */
function namingCpu(calls: number): { plain: number; dst: number } {
  const plain = new CronSchedule('0 */15 * * * *', { timeZone: 'Europe/Paris' });
  const dst = plain.withDaylightSaving({ springForward: 'skip', fallBack: 'once' });
  const time = (name: (at: number) => unknown) => {
    const start = performance.now();
    for (let i = 0; i < calls; i++) name(Date.now());
    return ((performance.now() - start) * 1000) / calls;
  };
  const plainUs = time((at) => plain.occurrenceAt(at));
  const dstUs = time((at) => dst.dstName(dst.occurrenceAt(at)!));
  return { plain: plainUs, dst: dstUs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { reps: { type: 'string' }, ops: { type: 'string' }, out: { type: 'string' } },
  });
  const reps = Number(values.reps ?? 5);
  const ops = Number(values.ops ?? 2_000);
  const out = resolve(values.out ?? 'bench/results/policy-costs');
  const redis = await startBenchRedis();
  const pinned = pinToCpu(redis.pid, 0) && pinToCpu(process.pid, 0);
  const client = redis.client();
  engine = new LockEngine({
    url: redis.url,
    logger: false,
    clock: { ...SYSTEM_CLOCK, now: () => simulatedNow },
  });
  await engine.waitUntilConnected();
  // Scripts cached first: every cycle then sends EVALSHA only.
  for (const script of [...LOCK_SCRIPTS, ...POLICY_SCRIPTS]) await script.load(client);
  const p50s: Record<string, number[]> = Object.fromEntries(Object.keys(CYCLES).map((id) => [id, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const [id, { cycle }] of Object.entries(CYCLES)) {
      for (let i = 0; i < 200; i++) await cycle(client); // warm-up
      const samples: number[] = [];
      for (let i = 0; i < ops; i++) {
        const start = performance.now();
        await cycle(client);
        samples.push(performance.now() - start);
        // Runs of a scheduled job are apart in time: the event loop turns between two, untimed.
        await new Promise(setImmediate);
      }
      p50s[id].push(median(samples) * 1000);
    }
  }
  const ratio = (id: string, to = 'floor') => median(p50s[id].map((p50, rep) => p50 / p50s[to][rep]));
  const naming = namingCpu(100_000);
  const lines = [
    `Policy costs: ${reps} repetitions × ${ops} sequential cycles, redis ${redis.version}, node ${process.version}, ` +
      `${pinned ? 'client and redis-server pinned to CPU 0' : 'not pinned (taskset failed)'}.`,
    '',
    '| Cycle | p50 µs (median of reps) | vs floor (median of per-rep ratios) |',
    '| --- | --: | --: |',
    ...Object.entries(CYCLES).map(
      ([id, { label }]) => `| ${label} | ${median(p50s[id]).toFixed(1)} | ${ratio(id).toFixed(2)}× |`,
    ),
    '',
    `The library's run of a job with a policy against raw ioredis sending the same scripts: ` +
      `${ratio('library-policy', 'cron-job-policy').toFixed(2)}× (median of per-repetition ratios).`,
    '',
    `Naming an occurrence (\`*/15\` in Europe/Paris), CPU per call: ${naming.plain.toFixed(2)} µs without \`dst\`, ` +
      `${naming.dst.toFixed(2)} µs with it (100 000 calls).`,
  ];
  const text = lines.join('\n');
  console.log(text);
  writeFileSync(`${out}.md`, `${text}\n`);
  writeFileSync(`${out}.json`, JSON.stringify({ reps, ops, p50s, naming }, null, 2));
  client.disconnect();
  await engine.close();
  await redis.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
