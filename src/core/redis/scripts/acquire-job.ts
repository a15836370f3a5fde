import type { Cluster, Redis } from 'ioredis';
import type { LockRequest } from '../../lock-store';
import { ACQUIRE_CODE } from './acquire';
import { LuaScript } from './lua-script';

/**
 * Takes the lock of a job that may be paused fleet-wide but serves no scheduled tick and issues no
 * fencing token: ACQUIRE's pause check and `SET NX PX`, nothing else. Replies with
 * `ACQUIRE_CODE.unfenced`, `held` or `paused` (read with `acquireReplyOf`).
 */
export const ACQUIRE_JOB = new LuaScript(`
local lockKey, pauseKey = KEYS[1], KEYS[2]
local token, ttlMs, job = ARGV[1], ARGV[2], ARGV[3]

if redis.call('HEXISTS', pauseKey, job) == 1 then return ${ACQUIRE_CODE.paused} end
if redis.call('SET', lockKey, token, 'NX', 'PX', ttlMs) then return ${ACQUIRE_CODE.unfenced} end
local held = redis.call('TYPE', lockKey).ok
if held ~= 'string' then return redis.error_reply('WRONGTYPE the lock key holds a ' .. held) end
return ${ACQUIRE_CODE.held}
`);

/** Sends ACQUIRE_JOB for `request`, its arguments in the script's order. */
export function sendAcquireJob(
  client: Redis | Cluster,
  afterNoScript: boolean,
  request: LockRequest,
): Promise<unknown> {
  const { lockKey, pauseKey, token, ttlMs, pausableJob } = request;
  return ACQUIRE_JOB.send(client, afterNoScript, 2, lockKey, pauseKey, token, ttlMs, pausableJob);
}
