import type { Cluster, Redis } from 'ioredis';
import { LuaScript } from './lua-script';

/**
 * Ends our hold on the lock only while it still holds our token. A hold of more than 0 ms keeps it
 * that much longer instead of deleting it (a minimum hold). Replies 1 when done, 0 when not ours.
 */
export const RELEASE_IF_OWNER = new LuaScript(`
local lockKey = KEYS[1]
local token, holdMs = ARGV[1], tonumber(ARGV[2])

if redis.call('GET', lockKey) ~= token then return 0 end
if holdMs > 0 then return redis.call('PEXPIRE', lockKey, holdMs) end
return redis.call('DEL', lockKey)
`);

/** Sends RELEASE_IF_OWNER, its arguments in the script's order. */
export function sendReleaseIfOwner(
  client: Redis | Cluster,
  afterNoScript: boolean,
  lockKey: string,
  token: string,
  holdMs: number,
): Promise<unknown> {
  return RELEASE_IF_OWNER.send(client, afterNoScript, 1, lockKey, token, holdMs);
}
