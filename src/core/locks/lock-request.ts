import type { Occurrence } from '../jobs/job-definition';
import { createToken, holderToken, ledgerKeysOf, ledgerMember, lockKeyOf, pausedKeyOf, stateKeyOf } from '../keys';
import type { LockRequest } from '../lock-store';
import type { OccurrenceClaim } from '../policies/ledger';
import type { EngineOptions } from '../options/resolve-options';

/** A tick may be this far ahead of the Redis clock at least (`tickAheadLimitMs` default: max(ttl, this)). */
const MIN_TICK_AHEAD_LIMIT_MS = 60_000;

/** What the store is asked for to take the lock `name` for `ttlMs`, serving `occurrence`. */
export function lockRequest(
  options: EngineOptions,
  name: string,
  ttlMs: number,
  fencing: boolean,
  occurrence: Occurrence,
): LockRequest {
  return new AcquisitionRequest(options, name, ttlMs, fencing, occurrence);
}

/**
 * Built by a constructor, as the other objects made on every recorded run are
 * (`fleet-operations.ts`), not returned as an object literal: V8 tracks where each literal is
 * allocated and, once a scavenge finds nearly all of a site's recent objects alive, allocates that
 * site's later objects in the old generation, where each one, dead when its call ends, keeps the
 * young strings it points to alive until a full collection. In the bench's loop of decorated calls
 * with operations on, four such literals went there, and about 365 KB reached the old generation
 * at each scavenge (docs/performance.md).
 */
class AcquisitionRequest implements LockRequest {
  readonly lockKey: string;
  readonly stateKey: string;
  readonly pausableJob: string;
  readonly pauseKey: string;
  readonly token: string;
  readonly tick: number | undefined;
  readonly tickField: string;
  readonly tickAheadLimitMs: number;
  readonly stateRetentionMs: number;
  readonly claim: OccurrenceClaim | undefined;

  constructor(
    options: EngineOptions,
    name: string,
    readonly ttlMs: number,
    readonly fencing: boolean,
    occurrence: Occurrence,
  ) {
    const lockKey = lockKeyOf(options.keyPrefix, name);
    const { tick, tickField, periodMs, job, tracked, ignoresPause } = occurrence;
    const { operations } = options;
    const pausableJob = operations && tracked && job !== undefined && !ignoresPause ? job : '';
    const tickAheadLimitMs = options.tickAheadLimitMs ?? Math.max(ttlMs, MIN_TICK_AHEAD_LIMIT_MS);
    const stateRetentionMs = Math.max(options.stateRetentionMs, 2 * ttlMs, 2 * periodMs);
    const keepMs = stateRetentionMs + tickAheadLimitMs;
    this.lockKey = lockKey;
    this.stateKey = tick === undefined && !fencing ? '' : stateKeyOf(lockKey);
    this.pausableJob = pausableJob;
    this.pauseKey = pausableJob === '' ? '' : pausedKeyOf(lockKey);
    this.token = operations ? holderToken(createToken(), options.replicaName, Date.now()) : createToken();
    this.tick = tick;
    this.tickField = tickField;
    this.tickAheadLimitMs = tickAheadLimitMs;
    this.stateRetentionMs = stateRetentionMs;
    this.claim =
      occurrence.ledger && tick !== undefined && job !== undefined
        ? claimOf(lockKey, occurrence, tick, job, keepMs, options.instanceId)
        : undefined;
  }
}

function claimOf(
  lockKey: string,
  { trigger, attempt, replaces, bufferOne }: Occurrence,
  tick: number,
  job: string,
  keepMs: number,
  holder: string,
): OccurrenceClaim {
  const { occurrences: occurrencesKey, attempts: attemptsKey } = ledgerKeysOf(lockKey);
  const member = ledgerMember(tick, job);
  const expected = replaces;
  return { occurrencesKey, attemptsKey, member, trigger, attempt, expected, holder, bufferIfHeld: bufferOne, keepMs };
}
