import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run with EVALSHA, falling back to EVAL when Redis has lost it (restart, SCRIPT FLUSH). */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  run(client: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    return client.evalsha(this.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (!isNoScriptError(error)) throw error;
      // EVAL runs it and caches it again, so the next call is back to one EVALSHA.
      return client.eval(this.source, keys.length, ...keys, ...args);
    });
  }

  /** Caches the script on the server ahead of the first call, keeping that call to one round trip. */
  load(client: Redis): Promise<unknown> {
    return client.script('LOAD', this.source);
  }
}

function isNoScriptError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * Deletes the lock only while it still holds our token. Returns 1 when deleted, 0 otherwise.
 * KEYS[1] lock key; ARGV[1] token.
 */
export const RELEASE_IF_OWNER = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
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

export const LOCK_SCRIPTS = [RELEASE_IF_OWNER, EXTEND_IF_OWNER];
