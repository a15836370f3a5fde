import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { LuaScript } from '../redis/scripts/lua-script';
import type { JobDeclaration } from './fleet-records';

/**
 * Schedule drift during a rolling deploy: replicas running different definitions of one job
 * (schedule, zone, lock name, TTL, policies) at once. Each replica publishes, every few seconds, a
 * fingerprint of each job it runs (`<prefix>{fleet}:replicas`, with Redis's time), and when it
 * first declared each definition (`<prefix>{fleet}:definitions`). While live replicas disagree,
 * the definition most recently first declared owns the job's occurrences; the others skip with
 * reason `drift`, so an old and a new schedule do not run side by side once every replica has
 * exchanged (within 3 s of the newer one's start).
 */

/** A replica's presence record counts as live this long after it was written (Redis time). */
export const PRESENCE_LIVE_S = 10;
/** How often a replica writes its presence and reads the others'. */
export const PRESENCE_INTERVAL_MS = 3_000;
/** Presence records older than this are deleted by whoever reads them. */
const PRESENCE_FORGET_S = 600;

/** One definition of a job that a live replica runs. */
export interface JobDefinitionSeen {
  readonly fingerprint: string;
  readonly cron: string | null;
  readonly timeZone: string | null;
  readonly key: string | null;
  readonly ttlMs: number;
  /** When a replica first declared this definition (ms since the epoch). */
  readonly firstDeclaredAt: number;
  /** The live replicas running it. */
  readonly replicas: readonly string[];
}

/** A job whose live replicas run more than one definition: which one owns its occurrences. */
export interface JobDrift {
  readonly job: string;
  readonly owner: string;
  readonly definitions: readonly JobDefinitionSeen[];
}

export const presenceKey = (keyPrefix: string): string => `${keyPrefix}{fleet}:replicas`;
export const definitionsKey = (keyPrefix: string): string => `${keyPrefix}{fleet}:definitions`;

/** What makes two declarations of a job the same definition, as 12 hex digits. */
export function fingerprintOf({ cron, timeZone, utcOffset, key, ttlMs, policies }: JobDeclaration): string {
  const definition = JSON.stringify([cron, timeZone, utcOffset, key, ttlMs, policies ?? null]);
  return createHash('sha1').update(definition).digest('hex').slice(0, 12);
}

/**
 * Writes this replica's presence (its record, stamped with Redis's time in s), the definitions it
 * declares, each set only where absent and stamped `firstDeclaredAt` with Redis's time in ms (in
 * place of `"@now"`), forgets long-gone replicas, and replies Redis's time (s), then both hashes as
 * flat field/value lists.
 */
const PRESENCE_SCRIPT = `
local replicasKey, definitionsKey = KEYS[1], KEYS[2]
local time = redis.call('TIME')
local now = tonumber(time[1])
local nowMs = string.format('%d', now * 1000 + math.floor(tonumber(time[2]) / 1000))
redis.call('HSET', replicasKey, ARGV[1], ARGV[2] .. '|' .. now)
for i = 3, #ARGV, 2 do
  local definition = string.gsub(ARGV[i + 1], '"@now"', nowMs)
  redis.call('HSETNX', definitionsKey, ARGV[i], definition)
end
local replicas = redis.call('HGETALL', replicasKey)
for i = 1, #replicas, 2 do
  local at = tonumber(string.match(replicas[i + 1], '|(%d+)$'))
  if at and now - at > ${PRESENCE_FORGET_S} then redis.call('HDEL', replicasKey, replicas[i]) end
end
return {now, replicas, redis.call('HGETALL', definitionsKey)}
`;
/** Loaded with the connection's own scripts once a replica publishes (see `DriftWatch`). */
export const PRESENCE = new LuaScript(PRESENCE_SCRIPT);

/** What a replica publishes: its name and the fingerprint of each job it runs. */
export interface Presence {
  readonly instanceId: string;
  readonly replica: string;
  readonly jobs: Readonly<Record<string, string>>;
  /** The definitions to record as first declared now, by `<job>|<fingerprint>`. */
  readonly declared: ReadonlyMap<string, string>;
}

/** Writes `presence` and reads the jobs whose live replicas disagree (a replica's exchange, every 3 s). */
export async function exchangePresence(
  client: Redis | Cluster,
  keyPrefix: string,
  presence: Presence,
): Promise<JobDrift[]> {
  const record = JSON.stringify({ replica: presence.replica, jobs: presence.jobs });
  const args = [presence.instanceId, record, ...[...presence.declared].flat()];
  const reply = (await PRESENCE.run(client, 2, presenceKey(keyPrefix), definitionsKey(keyPrefix), ...args)) as [
    number,
    string[],
    string[],
  ];
  return driftOf(reply[0], reply[1], reply[2]);
}

/** Reads the jobs whose live replicas disagree, writing nothing (the operators' tools: `status`, health, the dashboard). */
export async function readDrift(client: Redis | Cluster, keyPrefix: string): Promise<JobDrift[]> {
  const [[seconds], replicas, definitions] = await Promise.all([
    client.time(),
    client.hgetall(presenceKey(keyPrefix)),
    client.hgetall(definitionsKey(keyPrefix)),
  ]);
  return driftOf(Number(seconds), Object.entries(replicas).flat(), Object.entries(definitions).flat());
}

/** The jobs live replicas disagree on, from Redis's time (s) and the two hashes' field/value lists. */
export function driftOf(nowS: number, replicas: readonly string[], definitions: readonly string[]): JobDrift[] {
  const runners = new Map<string, Map<string, string[]>>(); // job → fingerprint → replicas
  for (let i = 0; i + 1 < replicas.length; i += 2) {
    const match = /^(.*)\|(\d+)$/s.exec(replicas[i + 1]);
    if (!match || nowS - Number(match[2]) > PRESENCE_LIVE_S) continue;
    let record: { replica: string; jobs: Record<string, string> };
    try {
      record = JSON.parse(match[1]) as typeof record;
    } catch {
      continue;
    }
    for (const [job, fingerprint] of Object.entries(record.jobs ?? {})) {
      const byFingerprint = runners.get(job) ?? new Map<string, string[]>();
      byFingerprint.set(fingerprint, [...(byFingerprint.get(fingerprint) ?? []), record.replica]);
      runners.set(job, byFingerprint);
    }
  }
  const seen = new Map<
    string,
    { firstDeclaredAt: number; cron: string | null; timeZone: string | null; key: string | null; ttlMs: number }
  >();
  for (let i = 0; i + 1 < definitions.length; i += 2) {
    try {
      seen.set(definitions[i], JSON.parse(definitions[i + 1]) as never);
    } catch {
      // not written by a replica: left out
    }
  }
  const drifts: JobDrift[] = [];
  for (const [job, byFingerprint] of runners) {
    if (byFingerprint.size < 2) continue;
    const found = [...byFingerprint].map(([fingerprint, names]): JobDefinitionSeen => {
      const definition = seen.get(`${job}|${fingerprint}`);
      return {
        fingerprint,
        cron: definition?.cron ?? null,
        timeZone: definition?.timeZone ?? null,
        key: definition?.key ?? null,
        ttlMs: definition?.ttlMs ?? 0,
        firstDeclaredAt: definition?.firstDeclaredAt ?? 0,
        replicas: names.sort(),
      };
    });
    found.sort((a, b) => b.firstDeclaredAt - a.firstDeclaredAt || (a.fingerprint < b.fingerprint ? 1 : -1));
    drifts.push({ job, owner: found[0].fingerprint, definitions: found });
  }
  return drifts.sort((a, b) => (a.job < b.job ? -1 : 1));
}
