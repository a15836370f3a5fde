import type { Cluster, Redis } from 'ioredis';
import { FENCE_FIELD } from '../../keys';
import type { AcquireReply, LockRequest } from '../../lock-store';
import { LuaScript } from './lua-script';

/** What the acquisition scripts reply besides a fencing token (> 1): their one definition, used in the Lua too. */
export const ACQUIRE_CODE = {
  /** Held by someone (ourselves included). */
  held: 0,
  /** Taken, without a fencing token. */
  unfenced: 1,
  /** The tick asked for was already served by some holder. */
  tickServed: -1,
  /** As `{clockSkew, <Redis time in ms>}`: the tick is too far from Redis's clock to judge. */
  clockSkew: -2,
  /** The job is paused fleet-wide. */
  paused: -3,
  /** Held, and the occurrence buffered to run when the lock is released (CLAIM_OCCURRENCE only). */
  buffered: -4,
} as const;

/**
 * Takes the lock for a scheduled tick, with a fencing token, or for a job that may be paused; a
 * plain acquisition is a `SET NX PX` of its own. Replies with the fencing token (> 1) or a code of
 * `ACQUIRE_CODE`.
 *
 * A paused job (a field of the pause hash, set by an operator) is refused before anything else:
 * its occurrences are not recorded as served, and nothing is written.
 * The state hash keeps, per job, the latest tick served (so a replica whose timer or clock runs
 * late cannot serve it again) and the key's fencing counter. A tick is judged against Redis's own
 * clock: one further ahead than the ahead bound comes from a replica whose clock is wrong and is
 * refused without being recorded (it would block every real tick until then); one older than the
 * retention is refused because its record may have expired. So the hash may expire once unused
 * for the retention (plus the ahead bound): nothing it decided can be asked again after that.
 * A lock key holding another type than a string was not written by a lock: WRONGTYPE, not "held".
 * A fencing token is max(last + 1, Redis time in microseconds), so tokens keep growing when the
 * counter is lost or stale (a restart, a failover to a replica that missed the last writes) as
 * long as the server clock does not go back. Tokens stay below 2^53, exact as JavaScript numbers.
 */
export const ACQUIRE = new LuaScript(`
local lockKey, stateKey, pauseKey = KEYS[1], KEYS[2], KEYS[3]
local token, ttlMs, tickArg, fencing = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local tickField, aheadMs, retentionMs, pausableJob = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]

if pausableJob ~= '' and redis.call('HEXISTS', pauseKey, pausableJob) == 1 then return ${ACQUIRE_CODE.paused} end
local tick = tonumber(tickArg)
local clock = redis.call('TIME')
if tick then
  local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
  if tick > now + aheadMs or tick < now - retentionMs then return {${ACQUIRE_CODE.clockSkew}, now} end
  local served = tonumber(redis.call('HGET', stateKey, tickField))
  if served and served >= tick then return ${ACQUIRE_CODE.tickServed} end
end
-- Every read comes before the first write: a state key of another type fails here, writing nothing.
local last = 0
if fencing then last = tonumber(redis.call('HGET', stateKey, '${FENCE_FIELD}')) or 0 end
if not redis.call('SET', lockKey, token, 'NX', 'PX', ttlMs) then
  local held = redis.call('TYPE', lockKey).ok
  if held ~= 'string' then return redis.error_reply('WRONGTYPE the lock key holds a ' .. held) end
  return ${ACQUIRE_CODE.held}
end
if tick then redis.call('HSET', stateKey, tickField, tickArg) end
local result = ${ACQUIRE_CODE.unfenced}
if fencing then
  result = math.max(last + 1, clock[1] * 1000000 + clock[2])
  redis.call('HSET', stateKey, '${FENCE_FIELD}', result)
end
redis.call('PEXPIRE', stateKey, retentionMs + aheadMs)
return result
`);

/** Sends ACQUIRE for `request`, its arguments in the script's order. */
export function sendAcquire(client: Redis | Cluster, afterNoScript: boolean, request: LockRequest): Promise<unknown> {
  const { lockKey, stateKey, pauseKey, token, ttlMs, tick, fencing, tickField } = request;
  return ACQUIRE.send(
    client,
    afterNoScript,
    3,
    lockKey,
    stateKey,
    pauseKey || stateKey,
    token,
    ttlMs,
    tick ?? '',
    fencing ? '1' : '',
    tickField,
    request.tickAheadLimitMs,
    request.stateRetentionMs,
    request.pausableJob,
  );
}

const ACQUIRED_UNFENCED: AcquireReply = { kind: 'acquired', fencingToken: undefined };
const HELD: AcquireReply = { kind: 'held' };
const TICK_SERVED: AcquireReply = { kind: 'tick-served' };
const PAUSED: AcquireReply = { kind: 'paused' };
const BUFFERED: AcquireReply = { kind: 'buffered' };

/** What ACQUIRE's (or ACQUIRE_JOB's) reply means. */
export function acquireReplyOf(reply: unknown): AcquireReply {
  if (Array.isArray(reply) && reply[0] === ACQUIRE_CODE.clockSkew) {
    return { kind: 'clock-skew', offsetMs: Date.now() - Number(reply[1]) };
  }
  const code = Number(reply);
  if (code === ACQUIRE_CODE.held) return HELD;
  if (code === ACQUIRE_CODE.tickServed) return TICK_SERVED;
  if (code === ACQUIRE_CODE.paused) return PAUSED;
  if (code === ACQUIRE_CODE.buffered) return BUFFERED;
  return code === ACQUIRE_CODE.unfenced ? ACQUIRED_UNFENCED : { kind: 'acquired', fencingToken: code };
}

/** The reply of a plain `SET NX PX`. */
export function setReplyOf(reply: unknown): AcquireReply {
  return reply === 'OK' ? ACQUIRED_UNFENCED : HELD;
}
