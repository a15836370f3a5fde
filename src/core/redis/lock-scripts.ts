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
/** ACQUIRE's reply when it took the lock without issuing a fencing token. */
export const ACQUIRE_UNFENCED = 1;

/**
 * Takes the lock for a scheduled tick or with a fencing token; a plain acquisition is a `SET NX PX`
 * of its own. Returns the fencing token (> 1), ACQUIRE_UNFENCED, ACQUIRE_HELD or ACQUIRE_TICK_DONE.
 * KEYS[1] lock key; KEYS[2] state hash (same hash slot); ARGV[1] token; ARGV[2] TTL in ms;
 * ARGV[3] tick in ms since the epoch, or '' when the caller serves no scheduled tick;
 * ARGV[4] '1' to issue a fencing token, '' not to.
 *
 * The state hash keeps, without expiry, the per-key fencing counter (so tokens only grow) and
 * the latest tick served (so a replica whose clock or timer runs late cannot serve it again).
 * Fencing tokens stay below 2^53, exact as JavaScript numbers.
 */
export const ACQUIRE = new LuaScript(`
local tick = ARGV[3]
if tick ~= '' then
  local served = redis.call('HGET', KEYS[2], 'tick')
  if served and tonumber(served) >= tonumber(tick) then return -1 end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if tick ~= '' then redis.call('HSET', KEYS[2], 'tick', tick) end
if ARGV[4] ~= '1' then return 1 end
local fence = redis.call('HINCRBY', KEYS[2], 'fence', 1)
if fence == 1 then
  -- A new (or lost) counter starts at the server time in microseconds, so tokens stay above
  -- those issued before Redis lost its data, unless a key was taken over a million times a second.
  local now = redis.call('TIME')
  fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
  redis.call('HSET', KEYS[2], 'fence', fence)
end
return fence
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
 * Sets a new TTL on the lock only while it still holds our token. Returns 1 when extended, 0 otherwise.
 * KEYS[1] lock key; ARGV[1] token; ARGV[2] TTL in ms.
 */
export const EXTEND_IF_OWNER = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);

export const LOCK_SCRIPTS = [ACQUIRE, RELEASE_IF_OWNER, EXTEND_IF_OWNER];
