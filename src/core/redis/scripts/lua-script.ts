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
