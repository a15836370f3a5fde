import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Redis, RedisOptions } from 'ioredis';
import { ConflictingLockOptionsError, DistributedLockConfigError } from './errors';
import { type Expectation, expectations, redactUrl } from './validation';

/** What a lock decision does when Redis cannot answer in time: run the job, or skip it. */
export type FailMode = 'open' | 'closed';

/** Where the library writes. Nest's `Logger` fits; so does `console`. */
export interface LockLogger {
  debug?(message: string): void;
  log?(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** How to reach Redis when the library opens its own connection. */
export interface RedisConnectionOptions {
  /** `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS). Wins over nothing: give host/port or a URL. */
  url?: string;
  /** @default 'localhost' */
  host?: string;
  /** @default 6379 */
  port?: number;
  /** Redis ACL user (Redis 6+). */
  username?: string;
  password?: string;
  /** @default 0 */
  db?: number;
  /** `true`, or Node TLS options, to connect over TLS. */
  tls?: boolean | TlsOptions;
}

/** Options of `DistributedLockModule.forRoot()` and of the framework-agnostic `LockEngine`. */
export interface DistributedLockOptions extends RedisConnectionOptions {
  /**
   * An ioredis client to reuse instead of opening a connection. The library never closes it.
   * Cannot be combined with the connection options.
   */
  client?: Redis;
  /** Prepended to every key the library writes, e.g. `myapp:` → `myapp:lock:<key>`. @default '' */
  keyPrefix?: string;
  /** `open` runs the job when Redis cannot decide in time; `closed` skips it. @default 'open' */
  failMode?: FailMode;
  /** How long one lock decision may wait on Redis before the fail mode applies. @default 1000 */
  acquireTimeoutMs?: number;
  /** Where to log outages and skipped ticks; `false` for silence. @default Nest Logger / console */
  logger?: LockLogger | false;
}

/** The options after defaults and validation, as the engine uses them. */
export interface ResolvedLockOptions {
  /** Options for the connection the library opens, or undefined when `client` is reused. */
  readonly connection: RedisOptions | undefined;
  readonly client: Redis | undefined;
  /** Where Redis is, for log lines; never contains a password. */
  readonly redisLabel: string;
  readonly keyPrefix: string;
  readonly failMode: FailMode;
  readonly acquireTimeoutMs: number;
  readonly logger: LockLogger;
}

export const DEFAULT_LOCK_OPTIONS = {
  host: 'localhost',
  port: 6379,
  db: 0,
  keyPrefix: '',
  failMode: 'open',
  acquireTimeoutMs: 1000,
} as const satisfies DistributedLockOptions;

/** The name each option goes by in error messages; the environment reader swaps in variable names. */
export type SettingNames = Record<keyof DistributedLockOptions, string>;

export const OPTION_NAMES: SettingNames = {
  url: 'url',
  host: 'host',
  port: 'port',
  username: 'username',
  password: 'password',
  db: 'db',
  tls: 'tls',
  client: 'client',
  keyPrefix: 'keyPrefix',
  failMode: 'failMode',
  acquireTimeoutMs: 'acquireTimeoutMs',
  logger: 'logger',
};

const CONNECTION_OPTIONS = ['url', 'host', 'port', 'username', 'password', 'db', 'tls'] as const;

const silentLogger: LockLogger = { warn() {}, error() {} };

const consoleLogger: LockLogger = {
  log: (message) => console.log(`[dpa-distributed-lock-cron] ${message}`),
  warn: (message) => console.warn(`[dpa-distributed-lock-cron] ${message}`),
  error: (message) => console.error(`[dpa-distributed-lock-cron] ${message}`),
};

/**
 * Merges defaults into `options` and validates them. Every bad value is reported with the
 * name the user wrote (`port`, or `REDIS_PORT` when `names` maps to variables) and the value.
 */
export function resolveLockOptions(
  options: DistributedLockOptions = {},
  names: SettingNames = OPTION_NAMES,
): ResolvedLockOptions {
  if (options === null || typeof options !== 'object') {
    throw new DistributedLockConfigError('options', options, 'an object');
  }
  rejectUnknownOptions(options);
  const check = <T>(option: keyof DistributedLockOptions, rule: Expectation<T>): T | undefined => {
    const value = options[option];
    if (value === undefined) return undefined;
    if (!rule.test(value)) throw new DistributedLockConfigError(names[option], value, rule.expected);
    return value;
  };

  const keyPrefix = check('keyPrefix', expectations.string) ?? DEFAULT_LOCK_OPTIONS.keyPrefix;
  const failMode = check('failMode', expectations.failMode) ?? DEFAULT_LOCK_OPTIONS.failMode;
  const acquireTimeoutMs = check('acquireTimeoutMs', expectations.positiveMs) ?? DEFAULT_LOCK_OPTIONS.acquireTimeoutMs;
  const logger = resolveLogger(options.logger, names.logger);

  if (options.client !== undefined) {
    if (!isRedisClient(options.client)) {
      throw new DistributedLockConfigError(names.client, options.client, 'an ioredis Redis client');
    }
    const given = CONNECTION_OPTIONS.filter((option) => options[option] !== undefined);
    if (given.length > 0) {
      throw new ConflictingLockOptionsError(
        [names.client, ...given.map((option) => names[option])],
        'a reused client brings its own connection settings; configure them on the client.',
      );
    }
    const { host, port, db } = options.client.options;
    return {
      connection: undefined,
      client: options.client,
      redisLabel: `${host ?? 'localhost'}:${port ?? 6379}/${db ?? 0} (shared client)`,
      keyPrefix,
      failMode,
      acquireTimeoutMs,
      logger,
    };
  }

  const connection = resolveConnection(options, names, check);
  return {
    connection,
    client: undefined,
    redisLabel: labelOf(connection),
    keyPrefix,
    failMode,
    acquireTimeoutMs,
    logger,
  };
}

function resolveConnection(
  options: DistributedLockOptions,
  names: SettingNames,
  check: <T>(option: keyof DistributedLockOptions, rule: Expectation<T>) => T | undefined,
): RedisOptions {
  const explicit: RedisOptions = {
    host: check('host', expectations.nonEmptyString),
    port: check('port', expectations.port),
    username: check('username', expectations.string),
    password: check('password', expectations.string),
    db: check('db', expectations.db),
  };
  const tls = options.tls;
  if (tls !== undefined && typeof tls !== 'boolean' && (tls === null || typeof tls !== 'object')) {
    throw new DistributedLockConfigError(names.tls, tls, 'true, false or Node TLS options');
  }

  let resolved: RedisOptions = { ...explicit };
  let urlWantsTls = false;
  const url = check('url', expectations.nonEmptyString);
  if (url !== undefined) {
    for (const option of ['host', 'port'] as const) {
      if (explicit[option] !== undefined) {
        throw new ConflictingLockOptionsError(
          [names.url, names[option]],
          `the URL already says where Redis is; drop ${names[option]} or put it in the URL.`,
        );
      }
    }
    const fromUrl = parseRedisUrl(url, names.url);
    urlWantsTls = fromUrl.tls;
    resolved = { ...fromUrl.options };
    // A setting given beside the URL fills what the URL leaves out; it must not contradict it.
    for (const option of ['username', 'password', 'db'] as const) {
      const separate = explicit[option];
      if (separate === undefined) continue;
      if (resolved[option] !== undefined && resolved[option] !== separate) {
        throw new ConflictingLockOptionsError(
          [names.url, names[option]],
          `the URL sets ${option} to a different value; keep one of them.`,
        );
      }
      (resolved as Record<string, unknown>)[option] = separate;
    }
  }
  if (urlWantsTls && tls === false) {
    throw new ConflictingLockOptionsError(
      [names.url, names.tls],
      'a rediss:// URL always uses TLS; drop tls=false or use redis://.',
    );
  }

  const tlsOptions = tls === true || (urlWantsTls && tls === undefined) ? {} : tls || undefined;
  return {
    host: resolved.host ?? DEFAULT_LOCK_OPTIONS.host,
    port: resolved.port ?? DEFAULT_LOCK_OPTIONS.port,
    db: resolved.db ?? DEFAULT_LOCK_OPTIONS.db,
    ...(resolved.username !== undefined && { username: resolved.username }),
    ...(resolved.password !== undefined && { password: resolved.password }),
    ...(tlsOptions !== undefined && { tls: tlsOptions }),
  };
}

/** Parses `redis://` / `rediss://` URLs strictly, so a typo fails at bootstrap, not at the first tick. */
function parseRedisUrl(url: string, setting: string): { options: RedisOptions; tls: boolean } {
  const expected = 'a redis:// or rediss:// URL such as redis://user:password@host:6379/0';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DistributedLockConfigError(setting, redactUrl(url), expected);
  }
  const dbPath = parsed.pathname.replace(/^\//, '');
  if (
    (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') ||
    parsed.hostname === '' ||
    !/^\d*$/.test(dbPath) ||
    parsed.search !== '' ||
    parsed.hash !== ''
  ) {
    throw new DistributedLockConfigError(setting, redactUrl(url), expected);
  }
  const options: RedisOptions = { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') };
  if (parsed.port !== '') options.port = Number(parsed.port);
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password);
  if (dbPath !== '') options.db = Number(dbPath);
  return { options, tls: parsed.protocol === 'rediss:' };
}

function rejectUnknownOptions(options: object): void {
  for (const option of Object.keys(options)) {
    if (!(option in OPTION_NAMES)) {
      throw new DistributedLockConfigError(
        'options',
        option,
        `made of known options only (${Object.keys(OPTION_NAMES).join(', ')}); unknown option`,
      );
    }
  }
}

function resolveLogger(logger: unknown, setting: string): LockLogger {
  if (logger === undefined) return consoleLogger;
  if (logger === false) return silentLogger;
  const candidate = logger as Partial<LockLogger> | null;
  if (candidate && typeof candidate.warn === 'function' && typeof candidate.error === 'function') {
    return candidate as LockLogger;
  }
  throw new DistributedLockConfigError(setting, logger, 'false or an object with warn() and error() methods');
}

function isRedisClient(value: unknown): value is Redis {
  const client = value as Partial<Redis> | null;
  return (
    !!client &&
    typeof client.set === 'function' &&
    typeof client.evalsha === 'function' &&
    typeof client.options === 'object'
  );
}

function labelOf(connection: RedisOptions): string {
  const scheme = connection.tls ? 'rediss' : 'redis';
  const user = connection.username ? `${connection.username}@` : '';
  return `${scheme}://${user}${connection.host}:${connection.port}/${connection.db}`;
}
