import { DistributedLockConfigError } from '../errors';
import { HIDDEN_VALUE } from '../validation';

/**
 * What an error from Redis means for a lock decision:
 * - `outage`: Redis cannot answer now (connection lost, a timeout, LOADING, BUSY, MASTERDOWN,
 *   TRYAGAIN, CLUSTERDOWN, …): the fail mode decides;
 * - `configuration`: Redis is up and says the settings are wrong (a password it refuses, a
 *   database it does not have, an ACL user not allowed the lock commands): nothing fails open,
 *   since another replica with the right settings may hold the lock;
 * - `data`: one key holds something else (WRONGTYPE): that key is refused, nothing fails open.
 */
export type ReplyErrorKind = 'outage' | 'configuration' | 'data';

const CONFIGURATION_ERRORS = [/^WRONGPASS\b/, /^NOAUTH\b/, /^NOPERM\b/, /^ERR .*DB index/i, /^ERR invalid password/i];
const DATA_ERRORS = [/^WRONGTYPE\b/];

export function classifyReplyError(error: unknown): ReplyErrorKind {
  const message = error instanceof Error ? error.message : String(error);
  if (CONFIGURATION_ERRORS.some((pattern) => pattern.test(message))) return 'configuration';
  if (DATA_ERRORS.some((pattern) => pattern.test(message))) return 'data';
  return 'outage';
}

/**
 * The bootstrap error for a configuration Redis refused, naming the setting to change (as an
 * option and as a variable) and never its value.
 */
export function configurationError(reply: Error, redisLabel: string): DistributedLockConfigError {
  const said = `the Redis at ${redisLabel} replied "${reply.message}"`;
  if (/^ERR .*DB index/i.test(reply.message)) {
    return new DistributedLockConfigError('db (REDIS_DB)', HIDDEN_VALUE, `a database index that Redis has: ${said}`);
  }
  if (/^NOPERM\b/.test(reply.message)) {
    return new DistributedLockConfigError(
      'username (REDIS_USERNAME)',
      HIDDEN_VALUE,
      `an ACL user allowed SET, EVAL, EVALSHA, SCRIPT and TIME on the lock keys: ${said}`,
    );
  }
  return new DistributedLockConfigError(
    'password (REDIS_PASSWORD) or username (REDIS_USERNAME)',
    HIDDEN_VALUE,
    `credentials Redis accepts: ${said}`,
  );
}
