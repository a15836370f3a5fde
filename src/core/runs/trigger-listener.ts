import type { Cluster, Redis } from 'ioredis';
import { describeError } from '../errors';
import {
  LISTENER_TTL_MS,
  parseRequest,
  statusValue,
  TRIGGER_POLL_MS,
  TRIGGER_STATUS_TTL_MS,
  type TriggerRequest,
  type TriggerStatus,
} from '../fleet/manual-triggers';
import type { JobDefinition } from '../jobs/job-definition';
import { triggerListenerKey, triggersKey, triggerStatusKey } from '../keys';
import type { SkipReason } from '../locks/attempt';
import { logInfo } from '../logger';
import type { EngineOptions } from '../options/resolve-options';
import { backoffDelay, raceDeadline, sleep } from '../waits';
import type { GuardedRuns } from './guarded-runs';
import { RepeatingTask } from './repeating-task';

/** A trigger older than this when a replica first reads it is left alone: whoever asked gave up. */
const STALE_TRIGGER_MS = 60_000;
/** How soon a run now waiting behind a run in progress (`overlap: 'buffer-one'`) tries again, at first and at most. */
const BUFFERED_RETRY_MS = 100;
const BUFFERED_MAX_RETRY_MS = 1_000;
/** Requests read per look at the stream. */
const READ_COUNT = 100;
/** The clock offset from Redis is measured once every this many looks. */
const LOOKS_PER_CLOCK_READ = 10;

/** Why a triggered run did not start, in the words the operator reads. */
const REFUSALS: { readonly [reason in SkipReason]: string } = {
  held: 'a run of the job holds its lock now',
  buffered: "a run of the job holds its lock now; the occurrence runs once it ends (overlap: 'buffer-one')",
  'tick-served': 'that occurrence already ran',
  paused: 'the job is paused (force runs it anyway)',
  'clock-skew': 'the occurrence is outside what Redis accepts by its clock (tickAheadLimitMs, stateRetentionMs)',
  refused: 'Redis refused the acquisition (see the replica log)',
  unavailable: 'Redis was unreachable under failMode closed',
  closed: 'the replica is shutting down',
  drift: 'live replicas run a newer definition of the job',
};

/** A job this replica runs, as a trigger runs it. */
interface TriggerableJob {
  readonly job: JobDefinition;
  readonly handler: () => unknown;
}

/**
 * The replica side of manual triggers (`fleet/manual-triggers.ts`), on with `manualTriggers`:
 * once a second, reads the trigger stream and sets this process's listener record; takes each
 * request for a job it runs whose status key it sets first, and runs the job through the guarded
 * runs (its lock, pause flag and records), attributed `trigger: 'manual'`.
 */
export class TriggerListener {
  private readonly jobs = new Map<string, TriggerableJob>();
  private readonly reads: RepeatingTask;
  /** The stream entry read last; first, a time by Redis's clock (stream ids are Redis times). */
  private readFrom: string | undefined;
  private closed = false;
  private looks = 0;
  private clockOffsetMs: number | undefined;

  constructor(
    private readonly options: EngineOptions,
    private readonly client: Redis | Cluster,
    private readonly isReady: () => boolean,
    private readonly runs: GuardedRuns,
    /** Whether another definition of the job owns its occurrences now (schedule drift): a replica running it takes the trigger. */
    private readonly skips: (job: string) => boolean,
  ) {
    const failed = (error: unknown): void =>
      options.logger.warn(`Reading manual triggers failed: ${describeError(error)}`);
    const look = () => raceDeadline(this.read(), options.acquireTimeoutMs, () => undefined);
    this.reads = new RepeatingTask(look, TRIGGER_POLL_MS, isReady, failed);
  }

  /** Lets triggers run `job` (one with a fixed lock name) on this replica by calling `handler`. */
  offer(job: JobDefinition, handler: () => unknown): void {
    if (job.key === undefined || this.closed) return;
    this.jobs.set(job.name, { job, handler });
    this.reads.start();
  }

  /** Stops reading, and removes this process's listener record (not waiting for Redis). */
  close(): void {
    this.closed = true;
    this.reads.stop();
    if (this.jobs.size > 0 && this.isReady()) {
      this.client.del(triggerListenerKey(this.options.keyPrefix, this.options.instanceId)).catch(() => undefined);
    }
  }

  private async read(): Promise<void> {
    const { keyPrefix, instanceId, replicaName } = this.options;
    if (this.looks++ % LOOKS_PER_CLOCK_READ === 0) await this.readClockOffset();
    const { clockOffsetMs } = this;
    this.readFrom ??= `${this.redisNow() - STALE_TRIGGER_MS}-0`;
    const listener = JSON.stringify({ replica: replicaName, jobs: [...this.jobs.keys()], clockOffsetMs });
    const [read] = await Promise.all([
      this.client.xread('COUNT', READ_COUNT, 'STREAMS', triggersKey(keyPrefix), this.readFrom),
      this.client.set(triggerListenerKey(keyPrefix, instanceId), listener, 'PX', LISTENER_TTL_MS),
    ]);
    for (const [id, fields] of read?.[0]?.[1] ?? []) {
      this.readFrom = id;
      const request = parseRequest(fields);
      const triggerable = request && this.jobs.get(request.job);
      if (!request || !triggerable || this.closed || this.skips(request.job)) continue;
      if (this.redisNow() > request.deadline) continue; // whoever asked has stopped waiting
      const taken = await this.setStatus(id, { state: 'taken', replica: replicaName }, true);
      if (taken) void this.run(id, request, triggerable);
    }
  }

  /** Now by Redis's clock, as this process estimates it from its last `TIME`. */
  private redisNow(): number {
    return Date.now() - (this.clockOffsetMs ?? 0);
  }

  /** This process's clock against Redis's `TIME`, read at the middle of the round trip (for the dashboard). */
  private async readClockOffset(): Promise<void> {
    const sentAt = performance.now();
    const [seconds, micros] = await this.client.time();
    const middle = Date.now() - (performance.now() - sentAt) / 2;
    this.clockOffsetMs = Math.round(middle - (Number(seconds) * 1000 + Number(micros) / 1000));
  }

  private async run(id: string, request: TriggerRequest, { job, handler }: TriggerableJob): Promise<void> {
    const replica = this.options.replicaName;
    const occurrence = job.triggeredOccurrence(request.occurrence, request.force);
    const started = (): unknown => {
      void this.setStatus(id, { state: 'started', replica, at: Date.now() }, false);
      return handler();
    };
    const what = `${job.name} (manual run by ${request.by || '?'})`;
    try {
      const once = () => this.runs.run(job.key!, job.ttlMs, started, job.settings, occurrence);
      let run = await once();
      // overlap: 'buffer-one': a run now that finds the lock held waits for the run in progress, as a due occurrence would.
      const waits = request.occurrence === undefined && job.policies.overlap === 'buffer-one';
      for (let retry = 0; waits && !run.ran && run.reason === 'held' && !this.closed; retry++) {
        await sleep(backoffDelay(retry, BUFFERED_RETRY_MS, BUFFERED_MAX_RETRY_MS));
        // Past the deadline whoever asked reports it not started: it must not start later.
        if (this.redisNow() > request.deadline) break;
        run = await once();
      }
      if (!run.ran) await this.setStatus(id, { state: 'refused', replica, reason: REFUSALS[run.reason] }, false);
      else logInfo(this.options.logger, `${what} ran on this replica.`);
    } catch (error) {
      this.options.logger.error(`${what} failed: ${describeError(error)}`);
    }
  }

  private async setStatus(id: string, status: TriggerStatus, onlyFirst: boolean): Promise<boolean> {
    const key = triggerStatusKey(this.options.keyPrefix, id);
    const value = statusValue(status);
    const reply = onlyFirst
      ? this.client.set(key, value, 'PX', TRIGGER_STATUS_TTL_MS, 'NX')
      : this.client.set(key, value, 'PX', TRIGGER_STATUS_TTL_MS);
    // Not written (Redis gone): whoever asked sees no start, and says so when its wait ends.
    return (await reply.catch(() => null)) === 'OK';
  }
}
