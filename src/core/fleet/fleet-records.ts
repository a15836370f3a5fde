/**
 * Where the engine keeps its locks in Redis, and what the fleet keeps beside them, under the
 * engine's `keyPrefix`: the one place for this layout. Every key of one lock name shares its hash
 * tag `{<name>}`, so a script can touch them together in a Cluster.
 *
 *   <prefix>lock:{<name>}          the lock: its holder's token (see `tokenOwner`)
 *   <prefix>lock:{<name>}:state    hash: fencing counter `fence`, each job's latest tick `tick:<job>`
 *   <prefix>lock:{<name>}:runs     stream: the run history of the jobs guarded by this name (`RunRecord`)
 *   <prefix>lock:{<name>}:paused   hash: job → `PauseRecord` (JSON), for each job paused fleet-wide
 *   <prefix>jobs                   hash: job → `JobRecord` (JSON), the guarded jobs replicas declared
 *   <prefix>jobs:first-declared    hash: job → when a replica first declared it (ms since the epoch)
 */

/** The key of the lock `name`. */
export function lockKeyOf(keyPrefix: string, name: string): string {
  return `${keyPrefix}lock:{${name}}`;
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

/** Every Redis key of one lock name. */
export function lockKeys(keyPrefix: string, name: string) {
  const lock = lockKeyOf(keyPrefix, name);
  return { lock, state: stateKeyOf(lock), runs: runsKeyOf(lock), paused: pausedKeyOf(lock) };
}

/** The hash of the jobs replicas declared. */
export function jobsKey(keyPrefix: string): string {
  return `${keyPrefix}jobs`;
}

/** The hash of when each job was first declared (ms since the epoch): occurrences before it are not its. */
export function jobsFirstDeclaredKey(keyPrefix: string): string {
  return `${keyPrefix}jobs:first-declared`;
}

/** A guarded job as a replica declares it at startup (what `status`, `missed` and `pause` look up). */
export interface JobRecord {
  /** The lock name, or null when it is computed per call (a key function). */
  readonly key: string | null;
  readonly ttlMs: number;
  /** The `@Cron` expression, or an ISO date for a one-off `@Cron(date)`; null for other jobs. */
  readonly cron: string | null;
  /** The zone the schedule is read in: the code's, else the declaring replica's own; null with `utcOffset`. */
  readonly timeZone: string | null;
  readonly utcOffset: number | null;
  /** The replica that wrote this record last, and when (ms since the epoch). */
  readonly declaredBy: string;
  readonly declaredAt: number;
}

/** A guarded job as code declares it (`JobRecord` without who declared it and when). */
export type JobDeclaration = Omit<JobRecord, 'declaredBy' | 'declaredAt'> & { readonly name: string };

/** How a recorded run ended. `abandoned`: still going when its replica shut down (its lock expired by TTL). */
export type RunRecordOutcome = 'ok' | 'error' | 'lost' | 'abandoned';

/**
 * One run of a guarded job, an entry of the `runs` stream (fields as strings; empty when unset).
 * Written with the release of its lock, so nothing is added before the job starts.
 */
export interface RunRecord {
  readonly job: string;
  readonly replica: string;
  /** The scheduled occurrence served (ms since the epoch), or undefined. */
  readonly tick: number | undefined;
  /** When the run started, by the replica's clock (ms since the epoch). */
  readonly startedAt: number;
  readonly durationMs: number;
  readonly outcome: RunRecordOutcome;
  /** The error's message, for `error` (at most 500 characters). */
  readonly error: string | undefined;
  readonly fencingToken: number | undefined;
}

/** The stream fields of a run record, in the order they are written; unset ones are left out. */
export function runRecordFields(run: RunRecord): string[] {
  const fields = ['job', run.job, 'replica', run.replica];
  if (run.tick !== undefined) fields.push('tick', String(run.tick));
  fields.push(
    'startedAt', String(Math.round(run.startedAt)),
    'durationMs', String(Math.round(run.durationMs)),
    'outcome', run.outcome,
  ); // prettier-ignore
  if (run.error !== undefined) fields.push('error', run.error.slice(0, 500));
  if (run.fencingToken !== undefined) fields.push('fencingToken', String(run.fencingToken));
  return fields;
}

/** A run record read back from its stream fields (as XRANGE returns them: name, value, …). */
export function parseRunRecord(fields: readonly string[]): RunRecord {
  const value = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) value.set(fields[i], fields[i + 1]);
  const number = (name: string): number | undefined => (value.get(name) ? Number(value.get(name)) : undefined);
  return {
    job: value.get('job') ?? '',
    replica: value.get('replica') ?? '',
    tick: number('tick'),
    startedAt: number('startedAt') ?? 0,
    durationMs: number('durationMs') ?? 0,
    outcome: (value.get('outcome') ?? 'ok') as RunRecordOutcome,
    error: value.get('error') || undefined,
    fencingToken: number('fencingToken'),
  };
}

/** A job paused fleet-wide: by whom (free text) and when. */
export interface PauseRecord {
  readonly by: string;
  readonly at: number;
}

/**
 * A lock token names its holder: `<unique part>.<acquired at, base 36 ms>@<replica name>`. The
 * unique part has no "@", so the replica name may hold anything.
 */
export function holderToken(uniquePart: string, replica: string, acquiredAt: number): string {
  return `${uniquePart}.${acquiredAt.toString(36)}@${replica}`;
}

/** Who holds a lock and since when, read from its token; undefined parts for tokens of another format. */
export function tokenOwner(token: string): { replica: string | undefined; since: number | undefined } {
  const at = token.indexOf('@');
  if (at === -1) return { replica: undefined, since: undefined };
  const unique = token.slice(0, at);
  const since = parseInt(unique.slice(unique.lastIndexOf('.') + 1), 36);
  return { replica: token.slice(at + 1), since: Number.isFinite(since) ? since : undefined };
}
