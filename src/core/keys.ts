import { randomBytes } from 'node:crypto';

/**
 * The Redis key layout, its hash fields and the lock token format: the one home of each. Every key
 * of one lock name shares its hash tag `{<name>}`, so a script can touch them together in a Cluster.
 *
 *   <prefix>lock:{<name>}          the lock: its holder's token (see `holderToken`)
 *   <prefix>lock:{<name>}:state    hash: fencing counter `fence`, each job's latest tick `tick:<job>`,
 *                                  its failed occurrences in a row `failures:<job>` (pauseAfterFailures)
 *   <prefix>lock:{<name>}:runs     stream: the run history of the jobs guarded by this name
 *   <prefix>lock:{<name>}:paused   hash: job → pause record (JSON), for each job paused fleet-wide
 *   <prefix>lock:{<name>}:occurrences  sorted set: `<tick>|<job>` by tick, the occurrences a job
 *                                       with a policy started (or skipped for a pause)
 *   <prefix>lock:{<name>}:attempts hash: `<tick>|<job>` → its latest attempt (see `policies/ledger.ts`)
 *   <prefix>jobs                   hash: job → job record (JSON), the guarded jobs replicas declared
 *   <prefix>jobs:first-declared    hash: job → when a replica first declared it (ms since the epoch)
 *   <prefix>jobs:names             hash: the name a schedule gives a job → its `Class.method`
 *   <prefix>instances:<id>         a live process's heartbeat (jobs with a policy): its replica name
 *   <prefix>triggers               stream: operators' manual triggers (`fleet.trigger`, CLI `trigger`)
 *   <prefix>triggers:<id>          a trigger's status: which replica took it, started or refused it
 *   <prefix>trigger-listeners:<id> a live process taking triggers (`manualTriggers`): its replica and jobs
 */

const LOCK_KEY_START = 'lock:{';

/** The key of the lock `name`. */
export function lockKeyOf(keyPrefix: string, name: string): string {
  return `${keyPrefix}${LOCK_KEY_START}${name}}`;
}

/** The state hash of a lock (its fencing counter and latest ticks), from the lock's key. */
export function stateKeyOf(lockKey: string): string {
  return `${lockKey}:state`;
}

/** The run history stream of a lock name, from the lock's key. */
export function runsKeyOf(lockKey: string): string {
  return `${lockKey}:runs`;
}

/** The pause hash of a lock name, from the lock's key. */
export function pausedKeyOf(lockKey: string): string {
  return `${lockKey}:paused`;
}

/** The ledger of a lock name's occurrences (jobs with a policy only), from the lock's key. */
export function ledgerKeysOf(lockKey: string): { occurrences: string; attempts: string } {
  return { occurrences: `${lockKey}:occurrences`, attempts: `${lockKey}:attempts` };
}

/** Every Redis key of one lock name. */
export function lockKeys(keyPrefix: string, name: string) {
  const lock = lockKeyOf(keyPrefix, name);
  return { lock, state: stateKeyOf(lock), runs: runsKeyOf(lock), paused: pausedKeyOf(lock), ...ledgerKeysOf(lock) };
}

/**
 * A SCAN pattern that matches every lock key under `keyPrefix` (and some of its neighbours: keep
 * only the keys `lockNameOfKey` reads), with the prefix's glob characters escaped.
 */
export function lockKeyPattern(keyPrefix: string): string {
  // Only a lock key ends with "}"; its state, history and pause keys end with their suffix.
  return `${escapeGlob(keyPrefix + LOCK_KEY_START)}*}`;
}

/** The lock name a key found by `lockKeyPattern` stands for, or undefined for a key of another kind. */
export function lockNameOfKey(keyPrefix: string, key: string): string | undefined {
  const start = keyPrefix + LOCK_KEY_START;
  return key.startsWith(start) && key.endsWith('}') ? key.slice(start.length, -1) : undefined;
}

/** The hash of the jobs replicas declared. */
export function jobsKey(keyPrefix: string): string {
  return `${keyPrefix}jobs`;
}

/** The hash of when each job was first declared (ms since the epoch): occurrences before it are not its. */
export function jobNamesKey(keyPrefix: string): string {
  return `${keyPrefix}jobs:names`;
}

export function jobsFirstDeclaredKey(keyPrefix: string): string {
  return `${keyPrefix}jobs:first-declared`;
}

/** The state hash field of the lock name's fencing counter. */
export const FENCE_FIELD = 'fence';

/** The state hash field of the latest tick served, for callers that name no job. */
export const TICK_FIELD = 'tick';

/** The state hash field of the latest tick a named job served: jobs sharing a key keep their own. */
export function jobTickField(jobName: string): string {
  return `${TICK_FIELD}:${jobName}`;
}

/** The state hash field of when a job's current definition (schedule, zone) was first seen: `<definition>|<ms>`. */
export function jobSinceField(jobName: string): string {
  return `since:${jobName}`;
}

/** The stream of manual triggers. */
export function triggersKey(keyPrefix: string): string {
  return `${keyPrefix}triggers`;
}

/** The status of the trigger `id` (a stream entry id). */
export function triggerStatusKey(keyPrefix: string, id: string): string {
  return `${keyPrefix}triggers:${id}`;
}

/** The listener record of a process taking triggers (`manualTriggers`). */
export function triggerListenerKey(keyPrefix: string, instanceId: string): string {
  return `${keyPrefix}trigger-listeners:${instanceId}`;
}

/** The SCAN pattern of every listener record. */
export function triggerListenerPattern(keyPrefix: string): string {
  return `${escapeGlob(`${keyPrefix}trigger-listeners:`)}*`;
}

/**
 * The state hash field counting a job's failed occurrences in a row (`pauseAfterFailures`):
 * `<count>|<latest tick counted>`; a later success sets it to 0, `resume` deletes it.
 */
export function jobFailuresField(jobName: string): string {
  return `failures:${jobName}`;
}

/** The state hash field naming the occurrence of a job that waits behind a run (`overlap: 'buffer-one'`). */
export function jobBufferedField(jobName: string): string {
  return `buffered:${jobName}`;
}

/** The ledger member of one occurrence of a job: the tick first, so a job name may hold any character. */
export function ledgerMember(tick: number, jobName: string): string {
  return `${tick}|${jobName}`;
}

/** The tick and job of a ledger member. */
export function parseLedgerMember(member: string): { tick: number; job: string } {
  const bar = member.indexOf('|');
  return { tick: Number(member.slice(0, bar)), job: member.slice(bar + 1) };
}

/** 128 random bits per process: no other process draws the same, or can guess it. */
const PROCESS_PART = randomBytes(16).toString('base64url');

/**
 * This process's identity in the fleet's records: a restarted replica is a new instance, so the
 * runs its former process left are known for dead once that process's heartbeat expires.
 */
export const INSTANCE_ID = PROCESS_PART.slice(0, 12);

let enginesStarted = 0;
/** The instance id of a new engine: `INSTANCE_ID` for the process's first, then `<INSTANCE_ID>-2`, … */
export function nextInstanceId(): string {
  return ++enginesStarted === 1 ? INSTANCE_ID : `${INSTANCE_ID}-${enginesStarted}`;
}

/** The key a live instance refreshes (jobs with a policy only): `<prefix>instances:<id>` → its replica name. */
export function heartbeatKeyOf(keyPrefix: string, instance: string): string {
  return `${keyPrefix}instances:${instance}`;
}
let issued = 0;

/**
 * A lock token no other acquisition has, in this process or any other: the process's random part
 * and a counter. A counter costs less than fresh random bytes per lock, and uniqueness is all a
 * token must give (anyone who can read Redis can read a token anyway).
 */
export function createToken(): string {
  return `${PROCESS_PART}.${(++issued).toString(36)}`;
}

/** The last acquisition time `holderToken` wrote, and its base-36 form. */
let lastAcquiredAt = Number.NaN;
let lastAcquiredAtBase36 = '';

/**
 * A lock token that names its holder: `<unique part>.<acquired at, base 36 ms>@<replica name>`. The
 * unique part has no "@", so the replica name may hold anything.
 */
export function holderToken(uniquePart: string, replica: string, acquiredAt: number): string {
  // Locks taken within one millisecond share its base-36 form, which costs more than the rest of the token.
  if (acquiredAt !== lastAcquiredAt) {
    lastAcquiredAt = acquiredAt;
    lastAcquiredAtBase36 = acquiredAt.toString(36);
  }
  return `${uniquePart}.${lastAcquiredAtBase36}@${replica}`;
}

/** Who holds a lock and since when, read from its token; undefined parts for tokens of another format. */
export function tokenOwner(token: string): { replica: string | undefined; since: number | undefined } {
  const at = token.indexOf('@');
  if (at === -1) return { replica: undefined, since: undefined };
  const unique = token.slice(0, at);
  const since = parseInt(unique.slice(unique.lastIndexOf('.') + 1), 36);
  return { replica: token.slice(at + 1), since: Number.isFinite(since) ? since : undefined };
}

/** Makes `text` match itself in a SCAN pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
