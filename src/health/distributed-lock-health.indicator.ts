import { Injectable } from '@nestjs/common';
import { type HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { describeError, InvalidLockArgumentError } from '../core/errors';
import type { JobDrift } from '../core/fleet/definition-drift';
import type { OverdueJob } from '../core/fleet/fleet-inspector';
import type { ServerProbe } from '../core/lock-store';
import { expectations } from '../core/validation';
import { DistributedLockService } from '../distributed-lock.service';

/** What `DistributedLockHealthIndicator.isHealthy` checks, and how strictly. */
export interface DistributedLockHealthOptions {
  /**
   * How far this replica's clock may be from Redis's `TIME`. A replica names each cron occurrence
   * from its own clock: one ahead by X runs every occurrence it serves X early, and one more than
   * `tickAheadLimitMs` ahead has its scheduled runs refused. NTP keeps hosts within milliseconds;
   * a second means the clock is not synchronized. @default 1000
   */
  maxClockOffsetMs?: number;
  /**
   * Also down when a `@Cron` job's latest occurrence, `overdueGraceMs` old, ran on no replica (read
   * from the jobs the fleet declares in Redis; not checked on a quorum, or with `operations: false`).
   * @default true
   */
  checkOverdue?: boolean;
  /**
   * How old an occurrence no replica has served may get before its job counts as overdue. An
   * occurrence counts as served when a run starts, so this only has to cover a late timer and the
   * acquisition. @default 60000
   */
  overdueGraceMs?: number;
}

/** Reported in the health details of each Redis server that answered. */
export interface ServerHealth {
  readonly server: string;
  /** Round trip of `TIME`, in ms (0.1 ms precision). */
  readonly latencyMs: number;
  /** How far this replica's clock is ahead of the server's (negative: behind), in ms (0.1 ms precision). */
  readonly clockOffsetMs: number;
}

/** A `@Cron` job whose latest occurrence ran nowhere, as the health details report it. */
export interface OverdueJobHealth {
  readonly job: string;
  /** The occurrence no replica ran, as an ISO date. */
  readonly occurrence: string;
  readonly lateMs: number;
}

/** The details of a `distributedLock` health result. */
export type DistributedLockHealthDetails = {
  /** Each Redis server (one, or each node of a quorum): its latency and clock offset, or why it did not answer. */
  readonly servers: (ServerHealth | { readonly server: string; readonly error: string })[];
  readonly maxClockOffsetMs: number;
  /** The overdue jobs; absent when they were not checked, or could not be read. */
  overdue?: OverdueJobHealth[];
  /** Jobs whose live replicas run different definitions (a rolling deploy), and which one owns each. */
  drift?: JobDrift[];
  /** The jobs that paused themselves (`pauseAfterFailures`); absent when none did, or they could not be read. */
  pausedAfterFailures?: PausedJobHealth[];
  /** What needs an operator though the check is up: the jobs that paused themselves, in plain words. */
  warning?: string;
  /** Why the check is down, in plain words; absent when up. */
  readonly message?: string;
};

/** A job that paused itself after failed occurrences in a row, as the health details report it. */
export interface PausedJobHealth {
  readonly job: string;
  /** When it paused, as an ISO date. */
  readonly at: string;
  /** How many occurrences in a row failed, and the last error. */
  readonly note: string;
}

export const DEFAULT_MAX_CLOCK_OFFSET_MS = 1000;
export const DEFAULT_OVERDUE_GRACE_MS = 60_000;

/** What reading the overdue jobs came to: the jobs, why they could not be read, or nothing to read. */
type OverdueRead = { readonly jobs: OverdueJob[] } | { readonly error: string } | undefined;

/**
 * A `@nestjs/terminus` health indicator for the distributed locks: down when Redis does not answer
 * `TIME` within `acquireTimeoutMs` (for a quorum: fewer than a majority of its nodes), when this
 * replica's clock is more than `maxClockOffsetMs` from Redis's, or when a `@Cron` job is overdue.
 * Add it to the providers of the module that imports `TerminusModule`; it uses the app's
 * `DistributedLockService`.
 *
 * @example
 * @Get('health')
 * @HealthCheck()
 * check() {
 *   return this.health.check([() => this.distributedLock.isHealthy('distributedLock')]);
 * }
 */
@Injectable()
export class DistributedLockHealthIndicator {
  constructor(
    private readonly lockService: DistributedLockService,
    private readonly healthIndicatorService: HealthIndicatorService,
  ) {}

  /**
   * Asks each Redis server for its time, and the fleet's records for overdue jobs, and reports
   * under `key` each server's latency and clock offset, the overdue jobs, and why the check is down
   * when it is. Answers within `acquireTimeoutMs`; an unreachable Redis is reported, never thrown.
   */
  async isHealthy<const Key extends string = 'distributedLock'>(
    key: Key = 'distributedLock' as Key,
    options: DistributedLockHealthOptions = {},
  ): Promise<HealthIndicatorResult<Key, 'up' | 'down', DistributedLockHealthDetails>> {
    const {
      maxClockOffsetMs = DEFAULT_MAX_CLOCK_OFFSET_MS,
      checkOverdue = true,
      overdueGraceMs = DEFAULT_OVERDUE_GRACE_MS,
    } = options;
    if (typeof maxClockOffsetMs !== 'number' || !(maxClockOffsetMs >= 0) || !Number.isFinite(maxClockOffsetMs)) {
      throw new InvalidLockArgumentError('maxClockOffsetMs', maxClockOffsetMs, 'a non-negative number of milliseconds');
    }
    if (!expectations.boolean.test(checkOverdue)) {
      throw new InvalidLockArgumentError('checkOverdue', checkOverdue, expectations.boolean.expected);
    }
    if (!expectations.nonNegativeMs.test(overdueGraceMs)) {
      throw new InvalidLockArgumentError('overdueGraceMs', overdueGraceMs, expectations.nonNegativeMs.expected);
    }
    const indicator = this.healthIndicatorService.check(key);
    // Both within acquireTimeoutMs, side by side: the check answers within it too.
    const [probes, overdue, paused] = await Promise.all([
      this.lockService.probe(),
      checkOverdue ? this.readOverdue(overdueGraceMs) : undefined,
      // A job that paused itself needs an operator, not a restart: a warning, never down.
      this.lockService.fleetNotices().catch(() => undefined),
    ]);

    const servers = probes.map(rounded);
    const serverProblems = probes.map((probe) => problemOf(probe, maxClockOffsetMs));
    const sound = serverProblems.filter((problem) => problem === undefined).length;
    // A quorum still decides with a majority of its nodes: a minority down is reported, not down.
    const redisDown = sound < Math.floor(probes.length / 2) + 1;
    const problems = redisDown ? serverProblems.filter((problem) => problem !== undefined) : [];
    const details: DistributedLockHealthDetails = { servers, maxClockOffsetMs };

    if (overdue && 'jobs' in overdue) {
      details.overdue = overdue.jobs.map(reported);
      problems.push(...overdue.jobs.map(describeOverdue));
      // When Redis did not answer TIME either, that says it all: the failed read adds nothing.
    } else if (overdue && !redisDown) {
      problems.push(`The fleet's job records could not be read to look for overdue jobs: ${overdue.error}.`);
    }
    const selfPaused = (paused?.paused ?? []).filter(({ pause }) => pause.afterFailures !== undefined);
    if (selfPaused.length > 0) {
      details.pausedAfterFailures = selfPaused.map(({ name, pause }) => ({
        job: name,
        at: new Date(pause.at).toISOString(),
        note: pause.note ?? '',
      }));
    }
    const warnings = [
      ...selfPaused.map(
        ({ name, pause }) => `${name} paused itself on every replica: ${pause.note}. Resume it once fixed.`,
      ),
      ...(paused?.drift ?? []).map(describeDrift),
    ];
    if (paused?.drift.length) details.drift = paused.drift;
    if (warnings.length > 0) details.warning = warnings.join(' ');
    if (problems.length === 0) return indicator.up(details);
    return indicator.down({ ...details, message: problems.join(' ') });
  }

  /** The overdue jobs, read within `acquireTimeoutMs`; undefined where the fleet keeps no records to read. */
  private readOverdue(graceMs: number): Promise<OverdueRead> {
    return this.lockService.overdueJobs({ graceMs }).then(
      (jobs) => jobs && { jobs },
      (error: unknown) => ({ error: describeError(error) }),
    );
  }
}

/** Why one server's answer makes the check down, or undefined when it is fine. */
function problemOf(probe: ServerProbe, maxClockOffsetMs: number): string | undefined {
  if ('error' in probe) return `Redis at ${probe.server} did not answer TIME: ${probe.error}.`;
  // The server read its clock somewhere within the round trip: the offset is known to ± half of it.
  const leastOffsetMs = Math.abs(probe.clockOffsetMs) - probe.latencyMs / 2;
  if (leastOffsetMs <= maxClockOffsetMs) return undefined;
  const ahead = probe.clockOffsetMs > 0;
  return (
    `This replica's clock is ${Math.round(Math.abs(probe.clockOffsetMs))} ms ${ahead ? 'ahead of' : 'behind'} the ` +
    `clock of Redis at ${probe.server}, beyond maxClockOffsetMs (${maxClockOffsetMs} ms): the cron occurrences it ` +
    `serves run that much ${ahead ? 'early' : 'late, when another replica has not served them already'}. ` +
    'Synchronize its clock (NTP).'
  );
}

function describeDrift({ job, definitions }: JobDrift): string {
  const [owner, ...others] = definitions;
  const other = others.map((seen) => `${seen.cron ?? 'no schedule'} on ${seen.replicas.join(', ')}`).join('; ');
  return (
    `${job} runs with different definitions on live replicas: ${owner.cron ?? 'no schedule'} on ` +
    `${owner.replicas.join(', ')} (the newest, which runs it) and ${other} (skipping it).`
  );
}

function describeOverdue(job: OverdueJob): string {
  const occurrence = new Date(job.occurrence).toISOString();
  return `${job.name} has not run its occurrence of ${occurrence} on any replica (${Math.round(job.lateMs / 1000)} s ago).`;
}

function reported(job: OverdueJob): OverdueJobHealth {
  return { job: job.name, occurrence: new Date(job.occurrence).toISOString(), lateMs: job.lateMs };
}

function rounded(probe: ServerProbe): DistributedLockHealthDetails['servers'][number] {
  if ('error' in probe) return { server: probe.server, error: probe.error };
  return { server: probe.server, latencyMs: tenths(probe.latencyMs), clockOffsetMs: tenths(probe.clockOffsetMs) };
}

const tenths = (ms: number): number => Math.round(ms * 10) / 10;
