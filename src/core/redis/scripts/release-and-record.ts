import type { Cluster, Redis } from 'ioredis';
import type { RunHistoryWrite } from '../../lock-store';
import { LuaScript } from './lua-script';

/**
 * RELEASE_IF_OWNER, and in the same call a record of the run appended to the lock's run history,
 * whether the lock was still ours or not (a run that lost its lock is recorded too). The stream is
 * capped near `maxLength` entries and expires `retentionMs` after its last record. The release
 * comes first, and the record is written with `pcall`: a history Redis refuses (an ACL user
 * without XADD) never keeps a lock. Replies 1 when released, 0 when not ours.
 */
export const RELEASE_AND_RECORD = new LuaScript(`
local lockKey, streamKey = KEYS[1], KEYS[2]
local token, holdMs, maxLength, retentionMs = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
-- ARGV[5..]: the record's fields and values, alternating.

local released = 0
if redis.call('GET', lockKey) == token then
  if holdMs > 0 then released = redis.call('PEXPIRE', lockKey, holdMs)
  else released = redis.call('DEL', lockKey) end
end
local added = redis.pcall('XADD', streamKey, 'MAXLEN', '~', maxLength, '*', unpack(ARGV, 5))
if type(added) ~= 'table' or not added.err then redis.pcall('PEXPIRE', streamKey, retentionMs) end
return released
`);

/** Sends RELEASE_AND_RECORD, its arguments in the script's order. */
export function sendReleaseAndRecord(
  client: Redis | Cluster,
  afterNoScript: boolean,
  lockKey: string,
  token: string,
  holdMs: number,
  record: RunHistoryWrite,
): Promise<unknown> {
  const { streamKey, maxLength, retentionMs, fields } = record;
  return RELEASE_AND_RECORD.send(
    client,
    afterNoScript,
    2,
    lockKey,
    streamKey,
    token,
    holdMs,
    maxLength,
    retentionMs,
    ...fields,
  );
}
