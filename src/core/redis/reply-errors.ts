import { describeError, DistributedLockConfigError } from '../errors';
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

/** An ACL user may run EVALSHA but not a command a script calls (Redis 7 words it so). */
const SCRIPT_COMMAND_DENIED = /^ERR The user executing the script can't run/;
const CONFIGURATION_ERRORS = [
  /^WRONGPASS\b/,
  /^NOAUTH\b/,
  /^NOPERM\b/,
  SCRIPT_COMMAND_DENIED,
  /^ERR .*DB index/i,
  /^ERR invalid password/i,
];

/** What an ACL user must be allowed: the commands the library sends, and those its scripts run. */
export const ACL_COMMANDS =
  'SET, EVAL, EVALSHA, SCRIPT, TIME, and inside the scripts GET, DEL, PEXPIRE, TYPE, HGET, HSET, HEXISTS and XADD, on the lock keys';
const DATA_ERRORS = [/^WRONGTYPE\b/];

/** Whether Redis refused a command to this ACL user (directly, or inside a script). */
export function isAclRefusal(error: Error): boolean {
  return /^NOPERM\b/.test(error.message) || SCRIPT_COMMAND_DENIED.test(error.message);
}

export function classifyReplyError(error: unknown): ReplyErrorKind {
  const message = describeError(error);
  if (CONFIGURATION_ERRORS.some((pattern) => pattern.test(message))) return 'configuration';
  if (DATA_ERRORS.some((pattern) => pattern.test(message))) return 'data';
  return 'outage';
}

/**
 * The bootstrap error for a configuration Redis refused, naming the setting to change (as an
 * option and as a variable) and never its value.
 */
export function configurationError(
  reply: Error,
  redisLabel: string,
  inUrl: { readonly credentials: boolean; readonly db: boolean },
): DistributedLockConfigError {
  const said = `the Redis at ${redisLabel} replied "${reply.message}"`;
  if (/^ERR .*DB index/i.test(reply.message)) {
    const setting = inUrl.db ? 'the database in url (REDIS_URL)' : 'db (REDIS_DB)';
    return new DistributedLockConfigError(setting, HIDDEN_VALUE, `a database index that Redis has: ${said}`);
  }
  if (isAclRefusal(reply)) {
    const setting = inUrl.credentials ? 'the user in url (REDIS_URL)' : 'username (REDIS_USERNAME)';
    return new DistributedLockConfigError(setting, HIDDEN_VALUE, `an ACL user allowed ${ACL_COMMANDS}: ${said}`);
  }
  const setting = inUrl.credentials
    ? 'the credentials in url (REDIS_URL)'
    : 'password (REDIS_PASSWORD) or username (REDIS_USERNAME)';
  return new DistributedLockConfigError(setting, HIDDEN_VALUE, `credentials Redis accepts: ${said}`);
}
