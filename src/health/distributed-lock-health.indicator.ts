import { Injectable } from '@nestjs/common';
import { type HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { InvalidLockArgumentError } from '../core/errors';
import type { ServerProbe } from '../core/lock-store';
import { DistributedLockService } from '../distributed-lock.service';

/** What `DistributedLockHealthIndicator.isHealthy` checks, and how strictly. */
export interface DistributedLockHealthOptions {
  /**
   * How far this replica's clock may be from Redis's `TIME`. A replica names each cron occurrence
   * from its own clock: one ahead by X runs every occurrence X early, and a replica more than
   * `tickAheadLimitMs` ahead has its scheduled runs refused. NTP keeps hosts within milliseconds;
   * a second means the clock is not synchronized. @default 1000
   */
  maxClockOffsetMs?: number;
}

/** Reported in the health details of each Redis server that answered. */
export interface ServerHealth {
  readonly server: string;
  /** Round trip of `TIME`, in ms (0.1 ms precision). */
  readonly latencyMs: number;
  /** How far this replica's clock is ahead of the server's (negative: behind), in ms (0.1 ms precision). */
  readonly clockOffsetMs: number;
}

/** The details of a `distributedLock` health result. */
export interface DistributedLockHealthDetails extends Record<string, unknown> {
  /** Each Redis server (one, or each node of a quorum): its latency and clock offset, or why it did not answer. */
  readonly servers: (ServerHealth | { readonly server: string; readonly error: string })[];
  readonly maxClockOffsetMs: number;
  /** Why the check is down, in plain words; absent when up. */
  readonly message?: string;
}

export const DEFAULT_MAX_CLOCK_OFFSET_MS = 1000;

/**
 * A `@nestjs/terminus` health indicator for the distributed locks: down when Redis does not answer
 * `TIME` within `acquireTimeoutMs` (for a quorum: fewer than a majority of its nodes), or when this
 * replica's clock is more than `maxClockOffsetMs` from Redis's. Add it to the providers of the
 * module that imports `TerminusModule`; it uses the app's `DistributedLockService`.
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
   * Asks each Redis server for its time and reports, under `key`, each one's latency and clock
   * offset, and why the check is down when it is. Answers within `acquireTimeoutMs`; never rejects
   * for an unreachable Redis (it reports it down).
   */
  async isHealthy<const Key extends string = 'distributedLock'>(
    key: Key = 'distributedLock' as Key,
    options: DistributedLockHealthOptions = {},
  ): Promise<HealthIndicatorResult<Key, 'up' | 'down', DistributedLockHealthDetails>> {
    const maxClockOffsetMs = options.maxClockOffsetMs ?? DEFAULT_MAX_CLOCK_OFFSET_MS;
    if (typeof maxClockOffsetMs !== 'number' || !(maxClockOffsetMs >= 0) || !Number.isFinite(maxClockOffsetMs)) {
      throw new InvalidLockArgumentError('maxClockOffsetMs', maxClockOffsetMs, 'a non-negative number of milliseconds');
    }
    const indicator = this.healthIndicatorService.check(key);
    const probes = await this.lockService.probe();
    const servers = probes.map(rounded);
    const problems = probes.map((probe) => problemOf(probe, maxClockOffsetMs));
    const sound = problems.filter((problem) => problem === undefined).length;
    // A quorum still decides with a majority of its nodes: a minority down is reported, not down.
    if (sound >= Math.floor(probes.length / 2) + 1) return indicator.up({ servers, maxClockOffsetMs });
    const message = problems.filter((problem) => problem !== undefined).join(' ');
    return indicator.down({ servers, maxClockOffsetMs, message });
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

function rounded(probe: ServerProbe): DistributedLockHealthDetails['servers'][number] {
  if ('error' in probe) return { server: probe.server, error: probe.error };
  return { server: probe.server, latencyMs: tenths(probe.latencyMs), clockOffsetMs: tenths(probe.clockOffsetMs) };
}

const tenths = (ms: number): number => Math.round(ms * 10) / 10;
