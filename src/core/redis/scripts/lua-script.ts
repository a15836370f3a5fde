import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** Redis does not have the script (restarted, or SCRIPT FLUSH): send its source with EVAL. */
export const isNoScriptError = (error: unknown): boolean =>
  error instanceof Error && error.message.startsWith('NOSCRIPT');

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

  /** EVALSHA, and EVAL once if Redis lost the script: for a call made outside the connection monitor. */
  async run(client: Redis | Cluster, numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown> {
    try {
      return await this.send(client, false, numKeys, ...keysAndArgs);
    } catch (error) {
      if (!isNoScriptError(error)) throw error;
      return this.send(client, true, numKeys, ...keysAndArgs);
    }
  }

  /** Caches the script on the server ahead of the first call, keeping that call to one round trip. */
  load(client: Redis | Cluster): Promise<unknown> {
    return client.script('LOAD', this.source);
  }
}
