import type { Cluster, Redis } from 'ioredis';
import { FENCE_FIELD, jobBufferedField } from '../../keys';
import type { LockRequest } from '../../lock-store';
import type { OccurrenceClaim } from '../../policies/ledger';
import { ACQUIRE_CODE } from './acquire';
import { LuaScript } from './lua-script';

/** Ledger entries older than the retention dropped per claim: enough to keep up, little per call. */
const PRUNE_PER_CLAIM = 64;

/**
 * ACQUIRE for a job with a policy: the lock, claimed for one (occurrence, attempt) of the job's
 * ledger, so each runs at most once across the fleet. Replies as ACQUIRE (`acquireReplyOf`).
 *
 * - `schedule` (attempt 1) is refused when the occurrence is in the ledger, or at or below the
 *   latest tick the schedule served (today's rule: a late timer never runs an older occurrence);
 *   it records that tick as served. Skipped for a pause, it is entered as `paused` (attempt 0), so
 *   catch-up leaves it alone; skipped because the lock is held (an earlier run still going: the
 *   overlap policy `skip`), it is entered as `skipped` (attempt 0); with `buffer-one`, when no
 *   other occurrence waits, it is entered as `buffered` (named in the state's buffered field) and
 *   the reply says so: a later claim with `expected` 'buffered' runs it once the lock is free.
 * - `catch-up` (attempt 1) is refused when the occurrence is in the ledger, or is exactly the
 *   latest tick the schedule served (a run by a replica without the policy). It leaves the served
 *   tick alone: a catch-up run never marks the next occurrence served.
 * - `retry` (attempt n > 1) is granted only while the ledger says attempt n − 1 ended in `error`.
 * - `recovery` (attempt n > 1) is granted only while the ledger still holds exactly `expected`:
 *   attempt n − 1 running on an instance whose heartbeat the caller found expired.
 * A granted claim enters `<attempt>|running|<trigger>|<Redis time>|<holder>`, and drops a few entries
 * older than the retention. Every read comes before the first write.
 */
export const CLAIM_OCCURRENCE = new LuaScript(`
local lockKey, stateKey, pauseKey, occurrencesKey, attemptsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, ttlMs, tickArg, fencing = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local tickField, aheadMs, retentionMs, pausableJob = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local member, trigger, attempt, expected, holder = ARGV[9], ARGV[10], tonumber(ARGV[11]), ARGV[12], ARGV[13]
local bufferOne, bufferedField = ARGV[14] == '1', ARGV[15]
local BUFFERED = '0|buffered|'
local function isBuffered(value) return value and string.sub(value, 1, #BUFFERED) == BUFFERED end
local tick = tonumber(tickArg)
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local keepMs = retentionMs + aheadMs

if pausableJob ~= '' and redis.call('HEXISTS', pauseKey, pausableJob) == 1 then
  if trigger == 'schedule' and tick <= now + aheadMs and tick >= now - retentionMs
    and redis.call('HSETNX', attemptsKey, member, '0|paused|schedule|' .. now) == 1 then
    redis.call('ZADD', occurrencesKey, tick, member)
    redis.call('PEXPIRE', occurrencesKey, keepMs)
    redis.call('PEXPIRE', attemptsKey, keepMs)
  end
  return ${ACQUIRE_CODE.paused}
end
if tick > now + aheadMs or tick < now - retentionMs then return {${ACQUIRE_CODE.clockSkew}, now} end
local current = redis.call('HGET', attemptsKey, member)
local served = tonumber(redis.call('HGET', stateKey, tickField))
if trigger == 'schedule' and expected == 'buffered' then
  if not isBuffered(current) then return ${ACQUIRE_CODE.tickServed} end
elseif trigger == 'schedule' then
  if current or (served and served >= tick) then return ${ACQUIRE_CODE.tickServed} end
elseif attempt == 1 then
  if current or served == tick then return ${ACQUIRE_CODE.tickServed} end
elseif trigger == 'recovery' then
  if current ~= expected then return ${ACQUIRE_CODE.tickServed} end
else
  local failed = (attempt - 1) .. '|error|'
  if not current or string.sub(current, 1, #failed) ~= failed then return ${ACQUIRE_CODE.tickServed} end
end
local last = 0
if fencing then last = tonumber(redis.call('HGET', stateKey, '${FENCE_FIELD}')) or 0 end
local stale = redis.call('ZRANGEBYSCORE', occurrencesKey, '-inf', '(' .. (now - retentionMs), 'LIMIT', 0, ${PRUNE_PER_CLAIM})
if not redis.call('SET', lockKey, token, 'NX', 'PX', ttlMs) then
  local held = redis.call('TYPE', lockKey).ok
  if held ~= 'string' then return redis.error_reply('WRONGTYPE the lock key holds a ' .. held) end
  if trigger ~= 'schedule' or expected == 'buffered' then return ${ACQUIRE_CODE.held} end
  -- One occurrence at most waits behind the run in progress: the one the buffered field names,
  -- while the ledger still says it waits.
  local waiting = redis.call('HGET', stateKey, bufferedField)
  local buffer = bufferOne and not (waiting and isBuffered(redis.call('HGET', attemptsKey, waiting)))
  redis.call('HSET', attemptsKey, member, (buffer and BUFFERED or '0|skipped|') .. 'schedule|' .. now)
  redis.call('ZADD', occurrencesKey, tick, member)
  redis.call('PEXPIRE', occurrencesKey, keepMs)
  redis.call('PEXPIRE', attemptsKey, keepMs)
  if not buffer then return ${ACQUIRE_CODE.held} end
  redis.call('HSET', stateKey, bufferedField, member)
  redis.call('PEXPIRE', stateKey, keepMs)
  return ${ACQUIRE_CODE.buffered}
end
if #stale > 0 then
  redis.call('ZREM', occurrencesKey, unpack(stale))
  redis.call('HDEL', attemptsKey, unpack(stale))
end
redis.call('HSET', attemptsKey, member, attempt .. '|running|' .. trigger .. '|' .. now .. '|' .. holder)
redis.call('ZADD', occurrencesKey, tick, member)
if trigger == 'schedule' and (not served or tick > served) then redis.call('HSET', stateKey, tickField, tickArg) end
if expected == 'buffered' then redis.call('HDEL', stateKey, bufferedField) end
local result = ${ACQUIRE_CODE.unfenced}
if fencing then
  result = math.max(last + 1, clock[1] * 1000000 + clock[2])
  redis.call('HSET', stateKey, '${FENCE_FIELD}', result)
end
redis.call('PEXPIRE', stateKey, keepMs)
redis.call('PEXPIRE', occurrencesKey, keepMs)
redis.call('PEXPIRE', attemptsKey, keepMs)
return result
`);

/** Sends CLAIM_OCCURRENCE for `request` and its `claim`, in the script's order. */
export function sendClaimOccurrence(
  client: Redis | Cluster,
  afterNoScript: boolean,
  request: LockRequest,
  claim: OccurrenceClaim,
): Promise<unknown> {
  const { lockKey, stateKey, pauseKey, token, ttlMs, tick, fencing, tickField } = request;
  return CLAIM_OCCURRENCE.send(
    client,
    afterNoScript,
    5,
    lockKey,
    stateKey,
    pauseKey || stateKey,
    claim.occurrencesKey,
    claim.attemptsKey,
    token,
    ttlMs,
    tick ?? '',
    fencing ? '1' : '',
    tickField,
    request.tickAheadLimitMs,
    request.stateRetentionMs,
    request.pausableJob,
    claim.member,
    claim.trigger,
    claim.attempt,
    claim.expected,
    claim.holder,
    claim.bufferIfHeld ? '1' : '',
    jobBufferedField(request.pausableJob),
  );
}
