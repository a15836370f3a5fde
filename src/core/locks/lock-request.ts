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
  const lockKey = lockKeyOf(options.keyPrefix, name);
  const { tick, tickField, periodMs, job, tracked, ignoresPause } = occurrence;
  const { operations } = options;
  const pausableJob = operations && tracked && job !== undefined && !ignoresPause ? job : '';
  const tickAheadLimitMs = options.tickAheadLimitMs ?? Math.max(ttlMs, MIN_TICK_AHEAD_LIMIT_MS);
  const stateRetentionMs = Math.max(options.stateRetentionMs, 2 * ttlMs, 2 * periodMs);
  const keepMs = stateRetentionMs + tickAheadLimitMs;
  return {
    lockKey,
    stateKey: tick === undefined && !fencing ? '' : stateKeyOf(lockKey),
    pausableJob,
    pauseKey: pausableJob === '' ? '' : pausedKeyOf(lockKey),
    token: operations ? holderToken(createToken(), options.replicaName, Date.now()) : createToken(),
    ttlMs,
    tick,
    tickField,
    fencing,
    tickAheadLimitMs,
    stateRetentionMs,
    claim:
      occurrence.ledger && tick !== undefined && job !== undefined
        ? claimOf(lockKey, occurrence, tick, job, keepMs, options.instanceId)
        : undefined,
  };
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
