import type { Cluster, Redis } from 'ioredis';
import type { LockRequest } from '../../lock-store';
import { LuaScript } from './lua-script';

/**
 * Undoes an acquisition whose taker will not use it (its reply came too late, or the engine was
 * closing): deletes the lock while it holds our token, and hands back the tick it recorded, while
 * no later tick has been recorded, by setting the marker just below it. Every earlier tick stays
 * refused, and the tick itself can be served by another replica. Replies 1.
 */
export const CANCEL_ACQUISITION = new LuaScript(`
local lockKey, stateKey = KEYS[1], KEYS[2]
local token, tick, tickField = ARGV[1], ARGV[2], ARGV[3]

if redis.call('GET', lockKey) == token then redis.call('DEL', lockKey) end
if tick ~= '' and redis.call('HGET', stateKey, tickField) == tick then
  redis.call('HSET', stateKey, tickField, tonumber(tick) - 1)
end
return 1
`);

/** Sends CANCEL_ACQUISITION for `request` (one that serves a tick), its arguments in the script's order. */
export function sendCancelAcquisition(
  client: Redis | Cluster,
  afterNoScript: boolean,
  request: LockRequest & { readonly tick: number },
): Promise<unknown> {
  const { lockKey, stateKey, token, tick, tickField } = request;
  return CANCEL_ACQUISITION.send(client, afterNoScript, 2, lockKey, stateKey, token, tick, tickField);
}
