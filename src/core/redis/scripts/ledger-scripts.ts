import type { Cluster, Redis } from 'ioredis';
import type { LockRequest } from '../../lock-store';
import { jobBufferedField, parseLedgerMember } from '../../keys';
import {
  type LedgerEntry,
  type LedgerQuery,
  type LedgerRead,
  type LedgerWrite,
  type OccurrenceClaim,
  parseLedgerValue,
} from '../../policies/ledger';
import type { FailureCount, FailureStreak } from '../../policies/failure-streak';
import { LuaScript } from './lua-script';

/**
 * Writes how an attempt ended into the ledger (`<attempt>|<status>|<trigger>|<Redis time>`),
 * unless a later attempt is already there. Replies 1 when written, 0 otherwise.
 */
export const SETTLE_OCCURRENCE = new LuaScript(`
local occurrencesKey, attemptsKey = KEYS[1], KEYS[2]
local member, tick, attempt, status, trigger, keepMs = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]

local current = redis.call('HGET', attemptsKey, member)
if current and tonumber(string.match(current, '^(%d+)')) > attempt then return 0 end
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
redis.call('HSET', attemptsKey, member, attempt .. '|' .. status .. '|' .. trigger .. '|' .. now)
redis.call('ZADD', occurrencesKey, tick, member)
redis.call('PEXPIRE', occurrencesKey, keepMs)
redis.call('PEXPIRE', attemptsKey, keepMs)
return 1
`);

export function sendSettleOccurrence(
  client: Redis | Cluster,
  afterNoScript: boolean,
  write: LedgerWrite,
): Promise<unknown> {
  const { occurrencesKey, attemptsKey, member, tick, attempt, status, trigger, keepMs } = write;
  return SETTLE_OCCURRENCE.send(
    client,
    afterNoScript,
    2,
    occurrencesKey,
    attemptsKey,
    member,
    tick,
    attempt,
    status,
    trigger,
    keepMs,
  );
}

/**
 * Undoes a claim whose taker will not use it (CANCEL_ACQUISITION for a job with a policy): deletes
 * the lock while it holds our token and, while the ledger still says the attempt is running,
 * hands the attempt back: attempt 1 leaves the ledger (and the served tick goes back below it), a
 * recovery puts back the value it replaced, a buffered run waits again, a retry finds attempt
 * n − 1 failed again. Occurrences skipped meanwhile because this grant held the lock (a grant that
 * landed after its deadline, while Redis was slow) are forgotten, so catch-up can run them. Replies 1.
 */
export const CANCEL_CLAIM = new LuaScript(`
local lockKey, stateKey, attemptsKey, occurrencesKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, tick, tickField, member, attempt, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local bufferedField = ARGV[7]

local ours = redis.call('GET', lockKey) == token
if ours then redis.call('DEL', lockKey) end
local running = attempt .. '|running|'
local current = redis.call('HGET', attemptsKey, member)
if not current or string.sub(current, 1, #running) ~= running then return 1 end
if ours then
  -- Occurrences skipped since this grant because it held the lock overlapped no run: catch-up may run them.
  local grantedAt = tonumber(string.match(current, '^%d+|running|[^|]*|(%d+)'))
  for _, other in ipairs(redis.call('ZRANGEBYSCORE', occurrencesKey, '(' .. tick, '+inf', 'LIMIT', 0, 64)) do
    local value = redis.call('HGET', attemptsKey, other)
    local at = value and tonumber(string.match(value, '^0|skipped|[^|]*|(%d+)'))
    if at and grantedAt and at >= grantedAt then
      redis.call('HDEL', attemptsKey, other)
      redis.call('ZREM', occurrencesKey, other)
    end
  end
end
if expected == 'buffered' then
  redis.call('HSET', attemptsKey, member, '0|buffered|schedule|0')
  redis.call('HSET', stateKey, bufferedField, member)
  return 1
end
if expected ~= '' then
  redis.call('HSET', attemptsKey, member, expected)
  return 1
end
if attempt > 1 then
  local trigger = attempt > 2 and 'retry' or 'schedule'
  redis.call('HSET', attemptsKey, member, (attempt - 1) .. '|error|' .. trigger .. '|0')
  return 1
end
redis.call('HDEL', attemptsKey, member)
redis.call('ZREM', occurrencesKey, member)
if redis.call('HGET', stateKey, tickField) == tick then redis.call('HSET', stateKey, tickField, tonumber(tick) - 1) end
return 1
`);

export function sendCancelClaim(
  client: Redis | Cluster,
  afterNoScript: boolean,
  request: LockRequest,
  claim: OccurrenceClaim,
): Promise<unknown> {
  const { lockKey, stateKey, token, tick, tickField } = request;
  return CANCEL_CLAIM.send(
    client,
    afterNoScript,
    4,
    lockKey,
    stateKey,
    claim.attemptsKey,
    claim.occurrencesKey,
    token,
    tick ?? '',
    tickField,
    claim.member,
    claim.attempt,
    claim.expected,
    jobBufferedField(request.pausableJob),
  );
}

/**
 * A job's ledger from a tick on: `{ since, now, served, member, value, member, value, … }`, where
 * `since` is when a replica first read it with the job's current definition (stamped now, by
 * Redis's clock, when absent or for another definition) and `served` the schedule's latest tick
 * ('' when none). Reading keeps the state alive while some replica looks.
 */
export const READ_LEDGER = new LuaScript(`
local stateKey, occurrencesKey, attemptsKey = KEYS[1], KEYS[2], KEYS[3]
local sinceField, definition, from, limit, keepMs, tickField = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]

local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local since = redis.call('HGET', stateKey, sinceField)
local prefix = definition .. '|'
local stamp
if since and string.sub(since, 1, #prefix) == prefix then
  stamp = tonumber(string.sub(since, #prefix + 1))
else
  stamp = now
  redis.call('HSET', stateKey, sinceField, prefix .. now)
end
redis.call('PEXPIRE', stateKey, keepMs)
local reply = {stamp, now, redis.call('HGET', stateKey, tickField) or ''}
local members = redis.call('ZRANGEBYSCORE', occurrencesKey, from, '+inf', 'LIMIT', 0, limit)
for _, member in ipairs(members) do
  reply[#reply + 1] = member
  reply[#reply + 1] = redis.call('HGET', attemptsKey, member) or ''
end
return reply
`);

export function sendReadLedger(client: Redis | Cluster, afterNoScript: boolean, query: LedgerQuery): Promise<unknown> {
  const { stateKey, occurrencesKey, attemptsKey, sinceField, definition, from, limit, keepMs, tickField } = query;
  return READ_LEDGER.send(
    client,
    afterNoScript,
    3,
    stateKey,
    occurrencesKey,
    attemptsKey,
    sinceField,
    definition,
    from,
    limit,
    keepMs,
    tickField,
  );
}

/** What READ_LEDGER's reply says of `job` (entries of other jobs on the lock name left out). */
export function ledgerReadOf(reply: unknown, job: string): LedgerRead {
  const values = reply as (string | number)[];
  const entries: LedgerEntry[] = [];
  for (let i = 3; i + 1 < values.length; i += 2) {
    const { tick, job: owner } = parseLedgerMember(String(values[i]));
    const entry = owner === job ? parseLedgerValue(tick, String(values[i + 1])) : undefined;
    if (entry) entries.push(entry);
  }
  const served = values[2] === '' ? undefined : Number(values[2]);
  return { since: Number(values[0]), now: Number(values[1]), served, entries };
}

/**
 * Counts an occurrence's end into its job's failure streak (`policies/failure-streak.ts`, the same
 * rule), and pauses the job once the streak reaches the limit, unless it is paused already.
 * Replies `{count, 1 when this call paused it}`.
 */
export const COUNT_FAILURES = new LuaScript(`
local stateKey, pauseKey = KEYS[1], KEYS[2]
local field, job, tick, failed, limit, record, keepMs =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1', tonumber(ARGV[5]), ARGV[6], ARGV[7]

local stored = redis.call('HGET', stateKey, field)
local count, latest = 0, nil
if stored then
  local c, t = string.match(stored, '^(%d+)|(%d+)$')
  count, latest = tonumber(c), tonumber(t)
end
if latest and tick <= latest then return {count, 0} end
if not failed then
  -- The success's tick stays: a failure of an older occurrence, ending late, does not start a streak.
  if stored then redis.call('HSET', stateKey, field, '0|' .. string.format('%d', tick)) end
  return {0, 0}
end
count = count + 1
redis.call('HSET', stateKey, field, count .. '|' .. string.format('%d', tick))
redis.call('PEXPIRE', stateKey, keepMs)
if count >= limit and redis.call('HSETNX', pauseKey, job, record) == 1 then return {count, 1} end
return {count, 0}
`);

export function sendCountFailures(
  client: Redis | Cluster,
  afterNoScript: boolean,
  write: FailureCount,
): Promise<unknown> {
  const { stateKey, pauseKey, field, job, tick, failed, limit, pauseRecord, keepMs } = write;
  return COUNT_FAILURES.send(
    client,
    afterNoScript,
    2,
    stateKey,
    pauseKey,
    field,
    job,
    tick,
    failed ? '1' : '0',
    limit,
    pauseRecord,
    keepMs,
  );
}

/** A `COUNT_FAILURES` reply as a `FailureStreak`. */
export function failureStreakOf(reply: unknown): FailureStreak {
  const [count, paused] = reply as [number, number];
  return { count, paused: paused === 1 };
}
