import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { ConflictingLockOptionsError, DistributedLockConfigError } from '../errors';
import { isCluster } from '../redis/is-cluster';
import { type Check, checkerFor } from './setting-check';
import type { DistributedLockOptions, RedisAddress, RedisConnectionOptions, SettingNames } from './lock-options';
import { expectations, redactUrl } from '../validation';

/** Where a connection goes when the options leave it out. */
const CONNECTION_DEFAULTS = { host: 'localhost', port: 6379, db: 0 } as const;

/** The settings a quorum node (`nodes[i]`) may carry: one connection's, nothing else. */
const NODE_SETTINGS: readonly (keyof RedisConnectionOptions)[] = [
  'url',
  'host',
  'port',
  'username',
  'password',
  'db',
  'tls',
];

/** Where the locks live, after validation. */
export type RedisTarget =
  | { readonly kind: 'standalone'; readonly options: RedisOptions; readonly label: string }
  | { readonly kind: 'sentinel'; readonly options: RedisOptions; readonly label: string }
  | { readonly kind: 'cluster'; readonly nodes: RedisAddress[]; readonly options: RedisOptions; readonly label: string }
  | { readonly kind: 'client'; readonly client: Redis | Cluster; readonly label: string }
  | { readonly kind: 'quorum'; readonly nodes: readonly RedisTarget[]; readonly label: string };

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

/** Validates the settings that say where Redis is, and which topology it is. */
export function resolveTarget(options: DistributedLockOptions, names: SettingNames, check: Check): RedisTarget {
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
    return clientTarget(options.client, names.client);
  }
  if (topology === 'quorum') return resolveQuorum(options.nodes, names.nodes, names);

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

function resolveQuorum(nodes: unknown, setting: string, names: SettingNames): RedisTarget {
  const expected = 'an array of at least 3 Redis URLs, connection options or ioredis clients';
  if (!Array.isArray(nodes) || nodes.length < 3) throw new DistributedLockConfigError(setting, nodes, expected);
  const targets = nodes.map((node: unknown, index): RedisTarget => {
    const name = `${setting}[${index}]`;
    if (isRedisClient(node)) return clientTarget(node, name);
    const connection = typeof node === 'string' ? { url: node } : node;
    if (connection === null || typeof connection !== 'object')
      throw new DistributedLockConfigError(name, node, expected);
    const stray = Object.keys(connection).find((option) => !NODE_SETTINGS.includes(option as never));
    if (stray !== undefined) {
      throw new DistributedLockConfigError(
        `${name}.${stray}`,
        stray,
        `left out: a node takes ${NODE_SETTINGS.join(', ')}`,
      );
    }
    const nodeNames = prefixedNames(name, names);
    const nodeOptions = connection as DistributedLockOptions;
    return resolveTarget(nodeOptions, nodeNames, checkerFor(nodeOptions, nodeNames));
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
    host: resolved.host ?? CONNECTION_DEFAULTS.host,
    port: resolved.port ?? CONNECTION_DEFAULTS.port,
    db: resolved.db ?? CONNECTION_DEFAULTS.db,
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

function prefixedNames(prefix: string, names: SettingNames): SettingNames {
  return Object.fromEntries(Object.keys(names).map((option) => [option, `${prefix}.${option}`])) as SettingNames;
}

/**
 * A client passed in must not queue a lock command while disconnected nor send it again after a
 * reconnect: a SET replayed minutes later would hold a lock nobody uses for its whole TTL.
 */
function clientTarget(client: Redis | Cluster, setting: string): RedisTarget {
  const queues = isCluster(client)
    ? client.options.enableOfflineQueue !== false ||
      client.options.redisOptions?.autoResendUnfulfilledCommands !== false
    : client.options.enableOfflineQueue !== false || client.options.autoResendUnfulfilledCommands !== false;
  if (queues) {
    const where = isCluster(client)
      ? '{ enableOfflineQueue: false, redisOptions: { autoResendUnfulfilledCommands: false } }'
      : '{ enableOfflineQueue: false, autoResendUnfulfilledCommands: false }';
    throw new DistributedLockConfigError(
      setting,
      client,
      `a client that never replays a lock command after a reconnect: create it with ${where}, or pass its connection settings instead and let the library open its own`,
    );
  }
  return { kind: 'client', client, label: clientLabel(client) };
}

export function isRedisClient(value: unknown): value is Redis | Cluster {
  const client = value as Partial<Redis> | null;
  return (
    !!client &&
    typeof client.set === 'function' &&
    typeof client.evalsha === 'function' &&
    typeof client.options === 'object'
  );
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

/** Which connection settings a Redis URL of `options` carries (validated already), so a refusal of them names the URL. */
export function settingsInUrl(options: DistributedLockOptions): { credentials: boolean; db: boolean } {
  if (typeof options.url !== 'string') return { credentials: false, db: false };
  const parsed = new URL(options.url);
  return {
    credentials: parsed.username !== '' || parsed.password !== '',
    db: parsed.pathname.replace(/^\//, '') !== '' && options.db === undefined,
  };
}
