import type { Cluster, Redis } from 'ioredis';
import { DistributedLockError, InvalidLockArgumentError } from '../errors';
import { jobTickField, lockKeys, triggerListenerPattern, triggersKey, triggerStatusKey } from '../keys';
import { expectations } from '../validation';
import { raceDeadline, sleep } from '../waits';
import { parsePause } from './fleet-records';
import type { MissedReport } from './fleet-reports';
import type { JobRecordReader } from './job-record-reader';
import {
  parseStatus,
  requestFields,
  START_GRACE_MS,
  statusValue,
  TRIGGER_STATUS_TTL_MS,
  TRIGGER_STREAM_LENGTH,
  type TriggerListener,
} from './manual-triggers';
import { scanKeys } from './redis-scan';

/** What `fleet.trigger` asks for. */
export interface TriggerOptions {
  /**
   * A missed occurrence of the job's `@Cron` schedule to run (ms since the epoch, or a Date): it
   * runs once, and counts as that occurrence's run. Without it: a run now, which serves no
   * occurrence (the schedule's next one runs as usual).
   */
  readonly occurrence?: number | Date;
  /** Run even though the job is paused. @default false */
  readonly force?: boolean;
  /** Who asks, in the replica's log. @default '' */
  readonly by?: string;
  /** How long to wait for a replica to start the run. @default 10000 */
  readonly timeoutMs?: number;
}

/** A triggered run that started: where, when, and the occurrence it serves (undefined: none). */
export interface TriggeredRun {
  readonly job: string;
  readonly replica: string;
  readonly startedAt: number;
  readonly occurrence: number | undefined;
}

/** A trigger no replica could start: the job is paused, a run holds its lock, the occurrence ran… */
export class TriggerRefusedError extends DistributedLockError {}

/** What a trigger reads and writes through: the fleet's connection, its declared jobs, its `missed`. */
export interface TriggerContext {
  readonly client: Redis | Cluster;
  readonly keyPrefix: string;
  readonly reader: JobRecordReader;
  readonly missed: (job: string, window: { from: number; to: number }) => Promise<MissedReport>;
}

/** How often the triggering side looks at the trigger's status. */
const STATUS_POLL_MS = 100;
const DEFAULT_TIMEOUT_MS = 10_000;
/** What the Redis calls around the wait may take, at most, before the call fails. */
const REDIS_ALLOWANCE_MS = 5_000;

/**
 * Asks one live replica that runs `job` to run it (`manual-triggers.ts`), and resolves once it
 * started; a `TriggerRefusedError` says why none did. Checks first what it can: the job is known,
 * has one lock name, is not paused (unless `force`), a replica takes triggers for it, and the
 * occurrence asked for is a missed one.
 */
export function triggerJob(fleet: TriggerContext, job: string, options: TriggerOptions): Promise<TriggeredRun> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!expectations.positiveMs.test(timeoutMs)) {
    throw new InvalidLockArgumentError('timeoutMs', timeoutMs, expectations.positiveMs.expected);
  }
  // Every wait is bounded: a Redis that stops answering fails the call instead of hanging it.
  const boundMs = timeoutMs + START_GRACE_MS + REDIS_ALLOWANCE_MS;
  return raceDeadline(trigger(fleet, job, options, timeoutMs), boundMs, () => {
    throw new DistributedLockError(`Redis did not answer within ${boundMs} ms; the trigger may not have reached it`);
  });
}

async function trigger(
  { client, keyPrefix, reader, missed }: TriggerContext,
  job: string,
  options: TriggerOptions,
  timeoutMs: number,
): Promise<TriggeredRun> {
  const { force = false, by = '' } = options;
  if (!expectations.boolean.test(force)) throw new InvalidLockArgumentError('force', force, 'true or false');
  if (typeof by !== 'string') throw new InvalidLockArgumentError('by', by, 'a string');
  const occurrence = options.occurrence instanceof Date ? options.occurrence.getTime() : options.occurrence;
  if (occurrence !== undefined && !Number.isSafeInteger(occurrence)) {
    throw new InvalidLockArgumentError('occurrence', options.occurrence, 'a Date or ms since the epoch');
  }
  const record = await reader.one(job);
  const keys = lockKeys(keyPrefix, await reader.lockNameOf(job, undefined, 'it has no single lock to run it under.'));
  const pause = parsePause(await client.hget(keys.paused, job));
  if (pause && !force) {
    const note = pause.note ? `: ${pause.note}` : '';
    throw new TriggerRefusedError(`${job} is paused (by ${pause.by || '?'}${note}); resume it, or force the run.`);
  }
  if (occurrence !== undefined) {
    const report = await missed(job, { from: occurrence, to: occurrence });
    if (!report.missed.includes(occurrence) && !report.toCatchUp.includes(occurrence)) {
      throw new TriggerRefusedError(notMissed(job, occurrence, report));
    }
    const served = await client.hget(keys.state, jobTickField(job));
    if (!record.policies && served !== null && Number(served) > occurrence) {
      throw new TriggerRefusedError(
        `${job} has served a later occurrence, and a job without a policy keeps only its latest: give it ` +
          'a policy (catchUp) to fill older ones.',
      );
    }
  }
  await liveListener(client, keyPrefix, job);
  const [seconds, micros] = await client.time();
  const deadline = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) + timeoutMs;
  const fields = requestFields({ job, occurrence, force, by, deadline });
  const id = (await client.xadd(triggersKey(keyPrefix), 'MAXLEN', '~', TRIGGER_STREAM_LENGTH, '*', ...fields))!;
  return awaitStart(client, triggerStatusKey(keyPrefix, id), job, occurrence, timeoutMs);
}

function notMissed(job: string, occurrence: number, report: MissedReport): string {
  const at = new Date(occurrence).toISOString();
  if (report.occurrences === 0)
    return `${at} is not an occurrence of ${job} (${report.schedule}), or is in the future.`;
  if (report.unknown.includes(occurrence))
    return `${at} lies outside the kept history of ${job}: whether it ran is not known.`;
  return `The occurrence ${at} of ${job} already ran (or is running).`;
}

/** The replicas taking triggers now (their listener records), sorted by name. */
export async function liveListeners(client: Redis | Cluster, keyPrefix: string): Promise<TriggerListener[]> {
  const keys = await scanKeys(client, triggerListenerPattern(keyPrefix), 'string');
  const values = await Promise.all(keys.map((key) => client.get(key)));
  const live = values.flatMap((value) => {
    try {
      return value === null ? [] : [JSON.parse(value) as TriggerListener];
    } catch {
      return []; // expired since the scan, or not written by a replica
    }
  });
  return live.sort((a, b) => (a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : 0));
}

/** Throws when no live replica takes triggers for `job`. */
async function liveListener(client: Redis | Cluster, keyPrefix: string, job: string): Promise<void> {
  const live = await liveListeners(client, keyPrefix);
  if (live.some((listener) => listener.jobs.includes(job))) return;
  const seen = live.length === 0 ? 'none is' : `${live.map((listener) => listener.replica).join(', ')} are, without it`;
  throw new TriggerRefusedError(
    `No live replica runs ${job} with manualTriggers on (of the replicas taking triggers, ${seen}).`,
  );
}

/**
 * Waits for the trigger's status to say started (resolves) or refused (throws). At the deadline it
 * withdraws a trigger no replica took; one a replica took gets `START_GRACE_MS` more for its word.
 */
async function awaitStart(
  client: Redis | Cluster,
  statusKey: string,
  job: string,
  occurrence: number | undefined,
  timeoutMs: number,
): Promise<TriggeredRun> {
  const read = (untilMs: number) => statusUntil(client, statusKey, job, occurrence, performance.now() + untilMs);
  const started = await read(timeoutMs);
  if (started) return started;
  const withdrawn = { state: 'refused', replica: '', reason: 'withdrawn: no replica started it in time' } as const;
  if ((await client.set(statusKey, statusValue(withdrawn), 'PX', TRIGGER_STATUS_TTL_MS, 'NX')) === 'OK') {
    throw new TriggerRefusedError(`No replica started ${job} within ${timeoutMs} ms.`);
  }
  // Taken: the replica starts the run only before the deadline, and says so.
  const late = await read(START_GRACE_MS);
  if (late) return late;
  const taken = parseStatus(await client.get(statusKey))?.replica ?? '?';
  throw new TriggerRefusedError(
    `No replica started ${job} within ${timeoutMs} ms (${taken} took it, and did not say it started).`,
  );
}

/** The run once the status says started; a `TriggerRefusedError` once it says refused; undefined at `until`. */
async function statusUntil(
  client: Redis | Cluster,
  statusKey: string,
  job: string,
  occurrence: number | undefined,
  until: number,
): Promise<TriggeredRun | undefined> {
  for (;;) {
    const status = parseStatus(await client.get(statusKey));
    if (status?.state === 'started') return { job, replica: status.replica, startedAt: status.at, occurrence };
    if (status?.state === 'refused')
      throw new TriggerRefusedError(`${status.replica} did not run ${job}: ${status.reason}.`);
    if (performance.now() >= until) return undefined;
    await sleep(STATUS_POLL_MS);
  }
}
