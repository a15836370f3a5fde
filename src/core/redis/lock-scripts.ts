import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/**
 * A Lua script sent with EVALSHA. When Redis has lost it (restart, SCRIPT FLUSH) and replies
 * NOSCRIPT, the caller sends it again with `afterNoScript`: one EVAL, which caches it again.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  send(
    client: Redis | Cluster,
    afterNoScript: boolean,
    numKeys: number,
    ...keysAndArgs: (string | number)[]
  ): Promise<unknown> {
    return afterNoScript
      ? client.eval(this.source, numKeys, ...keysAndArgs)
      : client.evalsha(this.sha, numKeys, ...keysAndArgs);
  }

  /** Caches the script on the server ahead of the first call, keeping that call to one round trip. */
  load(client: Redis | Cluster): Promise<unknown> {
    return client.script('LOAD', this.source);
  }
}

/** ACQUIRE's reply when the lock is held by someone (ourselves included). */
export const ACQUIRE_HELD = 0;
/** ACQUIRE's reply when the tick asked for was already served by some holder. */
export const ACQUIRE_TICK_DONE = -1;
/** ACQUIRE's reply (as `{ACQUIRE_CLOCK_SKEW, redisMs}`) when the tick is too far from Redis's clock to judge. */
export const ACQUIRE_CLOCK_SKEW = -2;
/** ACQUIRE's reply when the job is paused fleet-wide. */
export const ACQUIRE_PAUSED = -3;
/** ACQUIRE's reply when it took the lock without issuing a fencing token. */
export const ACQUIRE_UNFENCED = 1;

/**
 * Takes the lock for a scheduled tick, with a fencing token, or for a job that may be paused; a
 * plain acquisition is a `SET NX PX` of its own. Returns the fencing token (> 1), ACQUIRE_UNFENCED,
 * ACQUIRE_HELD, ACQUIRE_TICK_DONE, ACQUIRE_PAUSED or `{ACQUIRE_CLOCK_SKEW, <Redis time in ms>}`.
 * KEYS[1] lock key; KEYS[2] state hash; KEYS[3] the pause hash (all three in one hash slot);
 * ARGV[1] token; ARGV[2] TTL in ms; ARGV[3] tick in ms since the epoch, or '' when the caller
 * serves no scheduled tick; ARGV[4] '1' to issue a fencing token, '' not to; ARGV[5] the hash field
 * of the job's latest tick; ARGV[6] how far ahead of Redis's clock a tick may be; ARGV[7] the
 * state's retention in ms; ARGV[8] the job's name when a pause applies to it, else ''.
 *
 * A paused job (a field of the pause hash, set by an operator) is refused before anything else:
 * its occurrences are not recorded as served, and nothing is written.
 * The state hash keeps, per job, the latest tick served (so a replica whose timer or clock runs
 * late cannot serve it again) and the key's fencing counter. A tick is judged against Redis's own
 * clock: one further ahead than ARGV[6] comes from a replica whose clock is wrong and is refused
 * without being recorded (it would block every real tick until then); one older than the
 * retention is refused because its record may have expired. So the hash may expire once unused
 * for the retention (plus the ahead bound): nothing it decided can be asked again after that.
 * A lock key holding another type than a string was not written by a lock: WRONGTYPE, not "held".
 * A fencing token is max(last + 1, Redis time in microseconds), so tokens keep growing when the
 * counter is lost or stale (a restart, a failover to a replica that missed the last writes) as
 * long as the server clock does not go back. Tokens stay below 2^53, exact as JavaScript numbers.
 */
export const ACQUIRE = new LuaScript(`
if ARGV[8] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[8]) == 1 then return -3 end
local tick = tonumber(ARGV[3])
local clock = redis.call('TIME')
if tick then
  local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
  if tick > now + tonumber(ARGV[6]) or tick < now - tonumber(ARGV[7]) then return {-2, now} end
  local served = tonumber(redis.call('HGET', KEYS[2], ARGV[5]))
  if served and served >= tick then return -1 end
end
-- Every read comes before the first write: a state key of another type fails here, writing nothing.
local last = 0
if ARGV[4] == '1' then last = tonumber(redis.call('HGET', KEYS[2], 'fence')) or 0 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local held = redis.call('TYPE', KEYS[1]).ok
  if held ~= 'string' then return redis.error_reply('WRONGTYPE the lock key holds a ' .. held) end
  return 0
end
if tick then redis.call('HSET', KEYS[2], ARGV[5], ARGV[3]) end
local result = 1
if ARGV[4] == '1' then
  result = math.max(last + 1, clock[1] * 1000000 + clock[2])
  redis.call('HSET', KEYS[2], 'fence', result)
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[7]) + tonumber(ARGV[6]))
return result
`);

/**
 * Takes the lock of a job that may be paused fleet-wide but serves no scheduled tick and issues no
 * fencing token: ACQUIRE's pause check and `SET NX PX`, nothing else. Returns ACQUIRE_UNFENCED,
 * ACQUIRE_HELD or ACQUIRE_PAUSED.
 * KEYS[1] lock key; KEYS[2] the pause hash (same hash slot); ARGV[1] token; ARGV[2] TTL in ms;
 * ARGV[3] the job's name.
 */
export const ACQUIRE_JOB = new LuaScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return -3 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
local held = redis.call('TYPE', KEYS[1]).ok
if held ~= 'string' then return redis.error_reply('WRONGTYPE the lock key holds a ' .. held) end
return 0
`);

/**
 * Undoes an acquisition whose taker will not use it (its reply came too late, or the engine was
 * closing): deletes the lock while it holds our token, and hands back the tick it recorded, while
 * no later tick has been recorded, by setting the marker just below it. Every earlier tick stays
 * refused, and the tick itself can be served by another replica. Returns 1.
 * KEYS[1] lock key; KEYS[2] state hash; ARGV[1] token; ARGV[2] tick or ''; ARGV[3] the tick's field.
 */
export const CANCEL_ACQUISITION = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[3], tonumber(ARGV[2]) - 1)
end
return 1
`);

/**
 * Ends our hold on the lock only while it still holds our token. ARGV[2] > 0 keeps it that many
 * ms longer instead of deleting it (a minimum hold). Returns 1 when done, 0 when not ours.
 * KEYS[1] lock key; ARGV[1] token; ARGV[2] ms to keep holding.
 */
export const RELEASE_IF_OWNER = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
`);

/**
 * RELEASE_IF_OWNER, and in the same call a record of the run appended to the lock's run history,
 * whether the lock was still ours or not (a run that lost its lock is recorded too). The stream is
 * capped near ARGV[3] entries and expires ARGV[4] ms after its last record. The release comes
 * first, and the record is written with `pcall`: a history Redis refuses (an ACL user without
 * XADD) never keeps a lock.
 * KEYS[1] lock key; KEYS[2] run history stream (same hash slot); ARGV[1] token; ARGV[2] ms to keep
 * holding; ARGV[3] entries to keep; ARGV[4] retention in ms; ARGV[5..] the record's fields and values.
 */
export const RELEASE_AND_RECORD = new LuaScript(`
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[2]) > 0 then released = redis.call('PEXPIRE', KEYS[1], ARGV[2])
  else released = redis.call('DEL', KEYS[1]) end
end
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 5))
if type(added) ~= 'table' or not added.err then redis.pcall('PEXPIRE', KEYS[2], ARGV[4]) end
return released
`);

/**
 * Sets a new TTL on the lock only while it still holds our token. Returns 1 when extended, 0 otherwise.
 * KEYS[1] lock key; ARGV[1] token; ARGV[2] TTL in ms.
 */
export const EXTEND_IF_OWNER = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);

export const LOCK_SCRIPTS = [
  ACQUIRE,
  ACQUIRE_JOB,
  RELEASE_IF_OWNER,
  RELEASE_AND_RECORD,
  EXTEND_IF_OWNER,
  CANCEL_ACQUISITION,
];
