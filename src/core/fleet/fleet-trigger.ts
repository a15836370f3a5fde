import type { Cluster, Redis } from 'ioredis';
import { DistributedLockError, InvalidLockArgumentError } from '../errors';
import { jobTickField, lockKeys, triggerListenerPattern, triggersKey, triggerStatusKey } from '../keys';
import { expectations } from '../validation';
import { sleep } from '../waits';
import { parsePause } from './fleet-records';
import type { MissedReport } from './fleet-reports';
import type { JobRecordReader } from './job-record-reader';
import {
  parseStatus,
  requestFields,
  statusValue,
  TRIGGER_POLL_MS,
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

/** How often the triggering side looks at the trigger's status. */
const STATUS_POLL_MS = 100;

/**
 * Asks one live replica that runs `job` to run it (`manual-triggers.ts`), and resolves once it
 * started; a `TriggerRefusedError` says why none did. Checks first what it can: the job is known,
 * has one lock name, is not paused (unless `force`), a replica takes triggers for it, and the
 * occurrence asked for is a missed one.
 */
export async function triggerJob(
  client: Redis | Cluster,
  keyPrefix: string,
  reader: JobRecordReader,
  missed: (job: string, window: { from: number; to: number }) => Promise<MissedReport>,
  job: string,
  options: TriggerOptions,
): Promise<TriggeredRun> {
  const { force = false, by = '', timeoutMs = 10_000 } = options;
  if (!expectations.boolean.test(force)) throw new InvalidLockArgumentError('force', force, 'true or false');
  if (typeof by !== 'string') throw new InvalidLockArgumentError('by', by, 'a string');
  if (!expectations.positiveMs.test(timeoutMs)) {
    throw new InvalidLockArgumentError('timeoutMs', timeoutMs, expectations.positiveMs.expected);
  }
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
  const fields = requestFields({ job, occurrence, force, by });
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

/** Waits for the trigger's status to say started (resolves) or refused (throws); at the deadline, withdraws it. */
async function awaitStart(
  client: Redis | Cluster,
  statusKey: string,
  job: string,
  occurrence: number | undefined,
  timeoutMs: number,
): Promise<TriggeredRun> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = parseStatus(await client.get(statusKey));
    if (status?.state === 'started') return { job, replica: status.replica, startedAt: status.at, occurrence };
    if (status?.state === 'refused')
      throw new TriggerRefusedError(`${status.replica} did not run ${job}: ${status.reason}.`);
    if (performance.now() >= deadline) break;
    await sleep(Math.min(STATUS_POLL_MS, TRIGGER_POLL_MS));
  }
  // Withdrawn, unless a replica took it meanwhile: a trigger nobody waits for must not run later.
  const withdrawn = { state: 'refused', replica: '', reason: 'withdrawn: no replica started it in time' } as const;
  const taken = await client.set(statusKey, statusValue(withdrawn), 'PX', TRIGGER_STATUS_TTL_MS, 'NX');
  const by = taken === 'OK' ? '' : ` (${parseStatus(await client.get(statusKey))?.replica ?? '?'} took it)`;
  throw new TriggerRefusedError(`No replica started ${job} within ${timeoutMs} ms${by}.`);
}
