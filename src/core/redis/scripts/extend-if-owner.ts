import type { Cluster, Redis } from 'ioredis';
import { LuaScript } from './lua-script';

/** Sets a new TTL on the lock only while it still holds our token. Replies 1 when extended, 0 otherwise. */
export const EXTEND_IF_OWNER = new LuaScript(`
local lockKey = KEYS[1]
local token, ttlMs = ARGV[1], ARGV[2]

if redis.call('GET', lockKey) == token then
  return redis.call('PEXPIRE', lockKey, ttlMs)
end
return 0
`);

/** Sends EXTEND_IF_OWNER, its arguments in the script's order. */
export function sendExtendIfOwner(
  client: Redis | Cluster,
  afterNoScript: boolean,
  lockKey: string,
  token: string,
  ttlMs: number,
): Promise<unknown> {
  return EXTEND_IF_OWNER.send(client, afterNoScript, 1, lockKey, token, ttlMs);
}
