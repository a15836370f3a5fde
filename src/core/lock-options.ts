import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
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

/** A host and port, as in Sentinel and Cluster node lists. */
export interface RedisAddress {
  host: string;
  port: number;
}

/** How to reach one Redis when the library opens its own connection. */
export interface RedisConnectionOptions {
  /** `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS). Give either a URL or host/port. */
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
   * An ioredis `Redis` (standalone or Sentinel) or `Cluster` client to reuse instead of opening a
   * connection. The library never closes it. Cannot be combined with connection options.
   */
  client?: Redis | Cluster;
  /** Redis Sentinel: the sentinels that know the master named `name`. */
  sentinels?: RedisAddress[];
  /** Redis Sentinel: the master's name, e.g. `mymaster`. */
  name?: string;
  /** Redis Sentinel: the sentinels' own password, if they have one. */
  sentinelPassword?: string;
  /** Redis Cluster: one or more nodes to discover the cluster from. */
  clusterNodes?: RedisAddress[];
  /**
   * Redlock quorum: three or more independent Redis masters, each a URL, connection options or an
   * ioredis client. A lock is held when a majority grants it.
   */
  nodes?: (string | RedisConnectionOptions | Redis)[];
  /** Prepended to every key the library writes, e.g. `myapp:` → `myapp:lock:{<key>}`. @default '' */
  keyPrefix?: string;
  /** `open` runs the job when Redis cannot decide in time; `closed` skips it. @default 'open' */
  failMode?: FailMode;
  /** How long one lock decision may wait on Redis before the fail mode applies. @default 1000 */
  acquireTimeoutMs?: number;
  /**
   * Issue a fencing token with every acquisition (the default of each call's `fencing` option).
   * It costs a Lua call instead of a plain `SET NX PX`, and a small hash per lock name. @default false
   */
  fencing?: boolean;
  /** Where to log outages and skipped ticks; `false` for silence. @default Nest Logger / console */
  logger?: LockLogger | false;
}

/** Where the locks live, after validation. */
export type RedisTarget =
  | { readonly kind: 'standalone'; readonly options: RedisOptions; readonly label: string }
  | { readonly kind: 'sentinel'; readonly options: RedisOptions; readonly label: string }
  | { readonly kind: 'cluster'; readonly nodes: RedisAddress[]; readonly options: RedisOptions; readonly label: string }
  | { readonly kind: 'client'; readonly client: Redis | Cluster; readonly label: string }
  | { readonly kind: 'quorum'; readonly nodes: readonly RedisTarget[]; readonly label: string };

/** The options after defaults and validation, as the engine uses them. */
export interface ResolvedLockOptions {
  readonly target: RedisTarget;
  readonly keyPrefix: string;
  readonly failMode: FailMode;
  readonly acquireTimeoutMs: number;
  readonly fencing: boolean;
  readonly logger: LockLogger;
}

export const DEFAULT_LOCK_OPTIONS = {
  host: 'localhost',
  port: 6379,
  db: 0,
  keyPrefix: '',
  failMode: 'open',
  acquireTimeoutMs: 1000,
  fencing: false,
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
  sentinels: 'sentinels',
  name: 'name',
  sentinelPassword: 'sentinelPassword',
  clusterNodes: 'clusterNodes',
  nodes: 'nodes',
  keyPrefix: 'keyPrefix',
  failMode: 'failMode',
  acquireTimeoutMs: 'acquireTimeoutMs',
  fencing: 'fencing',
  logger: 'logger',
};

/** The settings that choose a topology; at most one of these groups may be given. */
const TOPOLOGIES = {
  standalone: ['url', 'host', 'port'],
  sentinel: ['sentinels', 'name', 'sentinelPassword'],
  cluster: ['clusterNodes'],
  quorum: ['nodes'],
  client: ['client'],
} as const satisfies Record<string, readonly (keyof DistributedLockOptions)[]>;

/** Settings of one connection that a reused client or a quorum's nodes bring themselves. */
const PER_CONNECTION = ['username', 'password', 'db', 'tls'] as const;

const silentLogger: LockLogger = { warn() {}, error() {} };

const consoleLogger: LockLogger = {
  log: (message) => console.log(`[dpa-distributed-lock-cron] ${message}`),
  warn: (message) => console.warn(`[dpa-distributed-lock-cron] ${message}`),
  error: (message) => console.error(`[dpa-distributed-lock-cron] ${message}`),
};

type Check = <T>(option: keyof DistributedLockOptions, rule: Expectation<T>) => T | undefined;

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
  const check: Check = (option, rule) => {
    const value = options[option];
    if (value === undefined) return undefined;
    if (!rule.test(value)) throw new DistributedLockConfigError(names[option], value, rule.expected);
    return value;
  };
  return {
    target: resolveTarget(options, names, check),
    keyPrefix: check('keyPrefix', expectations.string) ?? DEFAULT_LOCK_OPTIONS.keyPrefix,
    failMode: check('failMode', expectations.failMode) ?? DEFAULT_LOCK_OPTIONS.failMode,
    acquireTimeoutMs: check('acquireTimeoutMs', expectations.positiveMs) ?? DEFAULT_LOCK_OPTIONS.acquireTimeoutMs,
    fencing: check('fencing', expectations.boolean) ?? DEFAULT_LOCK_OPTIONS.fencing,
    logger: resolveLogger(options.logger, names.logger),
  };
}

function resolveTarget(options: DistributedLockOptions, names: SettingNames, check: Check): RedisTarget {
  const given = (Object.keys(TOPOLOGIES) as (keyof typeof TOPOLOGIES)[]).filter((topology) =>
    TOPOLOGIES[topology].some((option) => options[option] !== undefined),
  );
  if (given.length > 1) {
    const first = (topology: keyof typeof TOPOLOGIES) =>
      TOPOLOGIES[topology].find((option) => options[option] !== undefined)!;
    throw new ConflictingLockOptionsError(
      given.map((topology) => names[first(topology)]),
      'they choose different ways to reach Redis; keep one.',
    );
  }
  const topology = given[0] ?? 'standalone';

  if (topology === 'client' || topology === 'quorum') {
    const brought = PER_CONNECTION.filter((option) => options[option] !== undefined);
    if (brought.length > 0) {
      const what = topology === 'client' ? names.client : names.nodes;
      throw new ConflictingLockOptionsError(
        [what, ...brought.map((option) => names[option])],
        `each connection of ${what} brings its own settings; configure them there.`,
      );
    }
  }
  if (topology === 'client') {
    if (!isRedisClient(options.client)) {
      throw new DistributedLockConfigError(names.client, options.client, 'an ioredis Redis or Cluster client');
    }
    return { kind: 'client', client: options.client, label: clientLabel(options.client) };
  }
  if (topology === 'quorum') return resolveQuorum(options.nodes, names.nodes);

  const connection = resolveConnection(options, names, check);
  if (topology === 'sentinel') {
    const sentinels = checkAddresses(options.sentinels, names.sentinels);
    const name = check('name', expectations.nonEmptyString);
    if (name === undefined) {
      throw new DistributedLockConfigError(
        names.name,
        undefined,
        'the master name the sentinels monitor, with sentinels',
      );
    }
    const sentinelPassword = check('sentinelPassword', expectations.string);
    const { host: _host, port: _port, ...master } = connection;
    return {
      kind: 'sentinel',
      options: { ...master, sentinels, name, ...(sentinelPassword !== undefined && { sentinelPassword }) },
      label: `sentinel master "${name}" via ${sentinels.map(addressLabel).join(',')}`,
    };
  }
  if (topology === 'cluster') {
    const nodes = checkAddresses(options.clusterNodes, names.clusterNodes);
    if (options.db !== undefined && options.db !== 0) {
      throw new DistributedLockConfigError(
        names.db,
        options.db,
        '0 (or unset) with clusterNodes: Redis Cluster has a single database',
      );
    }
    const { host: _host, port: _port, db: _db, ...perNode } = connection;
    return { kind: 'cluster', nodes, options: perNode, label: `cluster via ${nodes.map(addressLabel).join(',')}` };
  }
  return { kind: 'standalone', options: connection, label: standaloneLabel(connection) };
}

function resolveQuorum(nodes: unknown, setting: string): RedisTarget {
  const expected = 'an array of at least 3 Redis URLs, connection options or ioredis clients';
  if (!Array.isArray(nodes) || nodes.length < 3) throw new DistributedLockConfigError(setting, nodes, expected);
  const targets = nodes.map((node: unknown, index): RedisTarget => {
    const name = `${setting}[${index}]`;
    if (isRedisClient(node)) return { kind: 'client', client: node, label: clientLabel(node) };
    const connection = typeof node === 'string' ? { url: node } : node;
    if (connection === null || typeof connection !== 'object')
      throw new DistributedLockConfigError(name, node, expected);
    const resolved = resolveLockOptions(connection as DistributedLockOptions, prefixedNames(name));
    if (resolved.target.kind !== 'standalone')
      throw new DistributedLockConfigError(name, node, 'a single standalone Redis');
    return resolved.target;
  });
  return {
    kind: 'quorum',
    nodes: targets,
    label: `quorum of ${targets.length}: ${targets.map((node) => node.label).join(', ')}`,
  };
}

function resolveConnection(options: DistributedLockOptions, names: SettingNames, check: Check): RedisOptions {
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

function checkAddresses(addresses: unknown, setting: string): RedisAddress[] {
  const valid =
    Array.isArray(addresses) &&
    addresses.length > 0 &&
    addresses.every(
      (address: Partial<RedisAddress> | null) =>
        !!address && expectations.nonEmptyString.test(address.host) && expectations.port.test(address.port),
    );
  if (!valid) throw new DistributedLockConfigError(setting, addresses, 'a non-empty list of { host, port }');
  return (addresses as RedisAddress[]).map(({ host, port }) => ({ host, port }));
}

function prefixedNames(prefix: string): SettingNames {
  return Object.fromEntries(Object.keys(OPTION_NAMES).map((option) => [option, `${prefix}.${option}`])) as SettingNames;
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

function isRedisClient(value: unknown): value is Redis | Cluster {
  const client = value as Partial<Redis> | null;
  return (
    !!client &&
    typeof client.set === 'function' &&
    typeof client.evalsha === 'function' &&
    typeof client.options === 'object'
  );
}

/** True for an ioredis `Cluster` (it has a node list; a `Redis` does not). */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return typeof (client as Cluster).nodes === 'function';
}

function clientLabel(client: Redis | Cluster): string {
  if (isCluster(client)) return 'cluster (shared client)';
  const { host, port, db } = client.options;
  return `${host ?? 'localhost'}:${port ?? 6379}/${db ?? 0} (shared client)`;
}

function addressLabel({ host, port }: RedisAddress): string {
  return `${host}:${port}`;
}

function standaloneLabel(connection: RedisOptions): string {
  const scheme = connection.tls ? 'rediss' : 'redis';
  const user = connection.username ? `${connection.username}@` : '';
  return `${scheme}://${user}${connection.host}:${connection.port}/${connection.db}`;
}
