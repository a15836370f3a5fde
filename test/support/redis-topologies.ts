import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { CAN_CONTROL_REDIS, killOnExit, startTestRedis, type TestRedis } from './redis-server';

/**
 * Real Redis topologies for the suites: a Redis Cluster, a Sentinel group, and independent masters,
 * each started from the `redis-server` / `redis-cli` binaries on free 127.0.0.1 ports. Every process
 * is killed by PID on `dispose()`, and on process exit if a suite crashes before that.
 */

/** Where a node, sentinel or master listens. */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** Whether the topologies can be started here: needs `redis-server`, `redis-cli`, and no `REDIS_URL`. */
export const CAN_START_TOPOLOGIES = CAN_CONTROL_REDIS && hasBinary('redis-cli');

const HOST = '127.0.0.1';
/** Bound on starting one process, and the default bound on forming a whole topology. */
const PROCESS_START_MS = 10_000;
const TOPOLOGY_START_MS = 30_000;
const POLL_MS = 100;
/** No persistence; a replica's first sync starts at once instead of after the 5 s diskless-sync delay. */
const DATA_NODE_ARGS = ['--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0'];

// ---------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------

export interface ClusterOptions {
  /** Masters sharing the 16384 slots (at least 3, as `redis-cli --cluster create` requires). */
  masters?: number;
  /** 0 (default) or more replicas per master; with 1, a killed master fails over to its replica. */
  replicasPerMaster?: number;
  /** Bound on forming the cluster, `cluster_state:ok` on every node included. */
  timeoutMs?: number;
}

/** A Redis Cluster on loopback; `cluster-node-timeout` is 1000 ms so failures are noticed quickly. */
export interface TestCluster {
  /** Every node, masters and replicas; indexes are stable across kill/start. */
  readonly nodes: readonly RedisAddress[];
  /** Kills node `index` without warning (SIGKILL). */
  kill(index: number): Promise<void>;
  /** Starts node `index` again on its port; it rejoins with its saved node id and config. */
  start(index: number): Promise<void>;
  /** Indexes of the live nodes that currently serve slots, as the live nodes see it. */
  masterIndexes(): Promise<number[]>;
  /** Index of the live master that serves `key`'s slot. */
  masterIndexForKey(key: string): Promise<number>;
  /**
   * Waits until the slots of killed master `index` are served by another node on every live node,
   * with `cluster_state:ok` everywhere, and returns that node's index.
   */
  waitForFailover(index: number, timeoutMs: number): Promise<number>;
  /**
   * Waits until every live node reports `cluster_state:ok`, knows every node and shares one view of
   * masters, replicas and slots, and every live replica's link to its master is up.
   */
  waitUntilOk(timeoutMs: number): Promise<void>;
  /** Kills every node and removes the cluster's temp dir. */
  dispose(): Promise<void>;
}

/**
 * Starts a Redis Cluster: `masters × (1 + replicasPerMaster)` nodes created with
 * `redis-cli --cluster create`, resolved once every node reports `cluster_state:ok`.
 *
 * @example
 * const cluster = await startCluster({ masters: 3 });
 * const client = new Cluster([...cluster.nodes]);
 */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 0;
  const timeoutMs = options.timeoutMs ?? TOPOLOGY_START_MS;
  if (masters < 3) throw new Error(`A cluster needs at least 3 masters, got ${masters}.`);
  const deadline = Date.now() + timeoutMs;
  const dir = makeTempDir('redis-cluster-');
  const spawned: ServerProcess[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.all(spawned.map((node) => node.dispose()));
    removeTempDir(dir);
  };
  try {
    const count = masters * (1 + replicasPerMaster);
    const started = await startAll(spawned, count, () =>
      startWithFreshPort(freeClusterPort, (port) => [
        '--port',
        String(port),
        '--bind',
        HOST,
        '--protected-mode',
        'no',
        '--dir',
        dir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '1000',
        ...DATA_NODE_ARGS,
      ]),
    );
    await runRedisCli(
      [
        '--cluster',
        'create',
        ...started.map((node) => `${HOST}:${node.port}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ],
      Math.max(deadline - Date.now(), 1_000),
    );
    const ids = await Promise.all(started.map(async (node) => String(await query(node.address, 'CLUSTER', 'MYID'))));
    const cluster = new LocalCluster(started, ids, dispose);
    await cluster.waitUntilOk(Math.max(deadline - Date.now(), 1_000));
    return cluster;
  } catch (error) {
    await dispose();
    throw error;
  }
}

class LocalCluster implements TestCluster {
  readonly nodes: readonly RedisAddress[];
  /** Slot ranges node `index` served when it was killed, to follow them to their new owner. */
  private readonly slotsAtKill = new Map<number, Array<[number, number]>>();

  constructor(
    private readonly processes: readonly ServerProcess[],
    private readonly ids: readonly string[],
    readonly dispose: () => Promise<void>,
  ) {
    this.nodes = processes.map((node) => node.address);
  }

  async kill(index: number): Promise<void> {
    const node = this.process(index);
    const slots = await this.viewFrom(node.address)
      .then((view) => view.find((line) => line.id === this.ids[index])?.slots ?? [])
      .catch(() => []);
    this.slotsAtKill.set(index, slots);
    await node.kill();
  }

  async start(index: number): Promise<void> {
    await this.process(index).start();
  }

  async masterIndexes(): Promise<number[]> {
    const view = await this.viewFrom(this.liveNodes()[0].address);
    return view
      .filter(
        (line) =>
          line.flags.includes('master') && !line.flags.some((flag) => flag.includes('fail')) && line.slots.length > 0,
      )
      .map((line) => this.indexOf(line.id))
      .sort((a, b) => a - b);
  }

  async masterIndexForKey(key: string): Promise<number> {
    const live = this.liveNodes()[0].address;
    const slot = Number(await query(live, 'CLUSTER', 'KEYSLOT', key));
    return this.indexOf(ownerOf(await this.viewFrom(live), slot));
  }

  async waitForFailover(index: number, timeoutMs: number): Promise<number> {
    const slots = this.slotsAtKill.get(index);
    if (!slots?.length) throw new Error(`Node ${index} was not killed as a master, so it has nothing to fail over.`);
    const slot = slots[0][0];
    return waitFor(`slot ${slot} of killed node ${index} to move to another master`, timeoutMs, async () => {
      const views = await Promise.all(this.liveNodes().map((node) => this.viewFrom(node.address)));
      const owners = new Set(views.map((view) => ownerOf(view, slot)));
      const [owner] = owners;
      if (owners.size !== 1 || owner === this.ids[index]) return undefined;
      return (await this.allOk()) ? this.indexOf(owner) : undefined;
    });
  }

  async waitUntilOk(timeoutMs: number): Promise<void> {
    await waitFor('cluster_state:ok on every node', timeoutMs, async () => ((await this.allOk()) ? true : undefined));
  }

  /**
   * Every live node reports ok and knows every node, all live nodes see the same masters, replicas
   * and slots with no live node flagged failing, and every live replica's link to its master is up.
   */
  private async allOk(): Promise<boolean> {
    const live = this.liveNodes();
    const liveIds = new Set(live.map((node) => this.ids[this.processes.indexOf(node)]));
    const views = await Promise.all(
      live.map(async (node) => {
        const info = parseInfo(String(await query(node.address, 'CLUSTER', 'INFO')));
        if (info.cluster_state !== 'ok' || Number(info.cluster_known_nodes) !== this.ids.length) return undefined;
        const replication = parseInfo(String(await query(node.address, 'INFO', 'replication')));
        if (replication.role !== 'master' && replication.master_link_status !== 'up') return undefined;
        const lines = (await this.viewFrom(node.address)).filter((line) => liveIds.has(line.id));
        if (lines.some((line) => line.flags.some((flag) => flag.includes('fail')))) return undefined;
        return lines
          .map((line) => `${line.id} ${line.flags.includes('master') ? 'master' : 'replica'} ${line.slots.join(' ')}`)
          .sort()
          .join('\n');
      }),
    );
    return views.every((view) => view !== undefined && view === views[0]);
  }

  private async viewFrom(address: RedisAddress): Promise<ClusterNodeLine[]> {
    return parseClusterNodes(String(await query(address, 'CLUSTER', 'NODES')));
  }

  private liveNodes(): ServerProcess[] {
    const live = this.processes.filter((node) => node.isRunning);
    if (!live.length) throw new Error('Every cluster node is down.');
    return live;
  }

  private process(index: number): ServerProcess {
    const node = this.processes[index];
    if (!node) throw new Error(`No cluster node ${index}; there are ${this.processes.length}.`);
    return node;
  }

  private indexOf(id: string | undefined): number {
    const index = this.ids.indexOf(id ?? '');
    if (index < 0) throw new Error(`Unknown cluster node id ${id}.`);
    return index;
  }
}

interface ClusterNodeLine {
  id: string;
  flags: string[];
  slots: Array<[number, number]>;
}

/** Parses `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, , flags, , , , , , ...slots] = line.trim().split(' ');
      return {
        id,
        flags: flags.split(','),
        slots: slots
          .filter((slot) => !slot.startsWith('[')) // migrating/importing markers
          .map((slot) => {
            const [from, to = from] = slot.split('-').map(Number);
            return [from, to] as [number, number];
          }),
      };
    });
}

function ownerOf(view: ClusterNodeLine[], slot: number): string | undefined {
  return view.find((line) => line.slots.some(([from, to]) => from <= slot && slot <= to))?.id;
}

/** Cluster ports are picked below the ephemeral range so neither a port nor its bus port (+10000) is
 * handed to an outgoing connection meanwhile. */
async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 12_000);
    if (claimedPorts.has(port)) continue;
    if ((await isPortFree(port)) && (await isPortFree(port + 10_000))) {
      claimedPorts.add(port);
      return port;
    }
  }
  throw new Error('Found no free port pair (port, port + 10000) for a cluster node.');
}

// ---------------------------------------------------------------------------------------------
// Sentinel
// ---------------------------------------------------------------------------------------------

export interface SentinelGroupOptions {
  /** Replicas of the initial master (default 1). */
  replicas?: number;
  /** Sentinels (default 3); the quorum is a majority of them. */
  sentinels?: number;
  /** Default `mymaster`. */
  masterName?: string;
  /** Bound on forming the group, every sentinel seeing every replica and sentinel included. */
  timeoutMs?: number;
}

/**
 * One master, its replicas and the sentinels that watch it. Sentinels declare the master down after
 * 1000 ms without a reply (`down-after-milliseconds`), with a `failover-timeout` of 3000 ms.
 */
export interface TestSentinelGroup {
  readonly sentinels: readonly RedisAddress[];
  readonly masterName: string;
  /** The initial master followed by its replicas. */
  readonly dataNodes: readonly RedisAddress[];
  /** The master a sentinel names now (`SENTINEL get-master-addr-by-name`). */
  master(): Promise<RedisAddress>;
  /** How many of the group's data nodes run now besides the master: its replicas once they have synced. */
  runningReplicas(): number;
  /** Kills the current master without warning (SIGKILL) and returns its address. */
  killMaster(): Promise<RedisAddress>;
  /**
   * Freezes every node but the current master (SIGSTOP) and drops their replication links, so they
   * miss the writes made meanwhile; resolves a function that thaws them.
   */
  freezeReplicas(): Promise<() => void>;
  /**
   * Resolves once every live sentinel names the same master, other than the one last killed (or the
   * current one when none was), and that node answers as a master.
   */
  waitForFailover(timeoutMs: number): Promise<RedisAddress>;
  /** Kills every process and removes the group's temp dir. */
  dispose(): Promise<void>;
}

/**
 * Starts a master, `replicas` replicas (`--replicaof`) and `sentinels` sentinels monitoring them,
 * resolved once every sentinel reports the master with all its replicas and the other sentinels.
 *
 * @example
 * const group = await startSentinelGroup({ replicas: 1, sentinels: 3 });
 * const client = new Redis({ sentinels: [...group.sentinels], name: group.masterName });
 */
export async function startSentinelGroup(options: SentinelGroupOptions = {}): Promise<TestSentinelGroup> {
  const replicaCount = options.replicas ?? 1;
  const sentinelCount = options.sentinels ?? 3;
  const masterName = options.masterName ?? 'mymaster';
  const deadline = Date.now() + (options.timeoutMs ?? TOPOLOGY_START_MS);
  const remaining = (): number => Math.max(deadline - Date.now(), 1_000);
  const quorum = Math.floor(sentinelCount / 2) + 1;
  const dir = makeTempDir('redis-sentinel-');
  const spawned: ServerProcess[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.all(spawned.map((node) => node.dispose()));
    removeTempDir(dir);
  };
  const dataArgs = (port: number): string[] => [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--protected-mode',
    'no',
    '--dir',
    dir,
    ...DATA_NODE_ARGS,
  ];
  try {
    const [master] = await startAll(spawned, 1, () => startWithFreshPort(freePort, dataArgs));
    const replicas = await startAll(spawned, replicaCount, () =>
      startWithFreshPort(freePort, (port) => [...dataArgs(port), '--replicaof', HOST, String(master.port)]),
    );
    // Sentinels learn replicas from the master's INFO, polled every 10 s: list them there first.
    await waitFor(`${replicaCount} online replicas on the master`, remaining(), async () => {
      const info = parseInfo(String(await query(master.address, 'INFO', 'replication')));
      const online = Object.keys(info).filter((key) => /^slave\d+$/.test(key) && info[key].includes('state=online'));
      return online.length === replicaCount ? true : undefined;
    });
    const sentinels = await startAll(spawned, sentinelCount, (n) =>
      startWithFreshPort(freePort, (port) => {
        // The sentinel rewrites this file (ids, epochs, discovered peers), so it lives in the temp dir.
        const file = join(dir, `sentinel-${n}-${port}.conf`);
        writeFileSync(
          file,
          [
            `port ${port}`,
            `bind ${HOST}`,
            'protected-mode no',
            `dir ${dir}`,
            'sentinel resolve-hostnames no',
            `sentinel monitor ${masterName} ${HOST} ${master.port} ${quorum}`,
            `sentinel down-after-milliseconds ${masterName} 1000`,
            `sentinel failover-timeout ${masterName} 3000`,
            `sentinel parallel-syncs ${masterName} 1`,
            '',
          ].join('\n'),
        );
        return [file, '--sentinel'];
      }),
    );
    await waitFor(`every sentinel to see the master, ${replicaCount} replicas and its peers`, remaining(), async () => {
      const views = await Promise.all(
        sentinels.map(async (sentinel) =>
          pairsToRecord(await query(sentinel.address, 'SENTINEL', 'MASTER', masterName)),
        ),
      );
      const settled = views.every(
        (view) =>
          view.flags === 'master' &&
          Number(view['num-slaves']) === replicaCount &&
          Number(view['num-other-sentinels']) === sentinelCount - 1,
      );
      return settled ? true : undefined;
    });
    return new LocalSentinelGroup(masterName, [master, ...replicas], sentinels, dispose);
  } catch (error) {
    await dispose();
    throw error;
  }
}

class LocalSentinelGroup implements TestSentinelGroup {
  readonly sentinels: readonly RedisAddress[];
  readonly dataNodes: readonly RedisAddress[];
  private lastKilled: RedisAddress | undefined;

  constructor(
    readonly masterName: string,
    private readonly dataProcesses: readonly ServerProcess[],
    private readonly sentinelProcesses: readonly ServerProcess[],
    readonly dispose: () => Promise<void>,
  ) {
    this.sentinels = sentinelProcesses.map((node) => node.address);
    this.dataNodes = dataProcesses.map((node) => node.address);
  }

  async master(): Promise<RedisAddress> {
    let lastError: unknown;
    for (const sentinel of this.liveSentinels()) {
      try {
        return await this.masterNamedBy(sentinel.address);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  runningReplicas(): number {
    return this.dataProcesses.filter((node) => node.isRunning).length - 1;
  }

  async killMaster(): Promise<RedisAddress> {
    const address = await this.master();
    const node = this.dataProcesses.find((candidate) => candidate.port === address.port);
    if (!node) throw new Error(`The sentinels name ${address.host}:${address.port}, which this group did not start.`);
    this.lastKilled = address;
    await node.kill();
    return address;
  }

  async freezeReplicas(): Promise<() => void> {
    const master = await this.master();
    const frozen = this.dataProcesses.filter((node) => node.port !== master.port && node.isRunning);
    for (const node of frozen) node.signal('SIGSTOP');
    // Cut their replication links too: writes already on the wire would still reach a frozen node
    // from its socket buffer once thawed.
    await query(master, 'CLIENT', 'KILL', 'TYPE', 'replica');
    return () => frozen.forEach((node) => node.signal('SIGCONT'));
  }

  async waitForFailover(timeoutMs: number): Promise<RedisAddress> {
    const previous = this.lastKilled ?? (await this.master());
    return waitFor(`the sentinels to name a master other than port ${previous.port}`, timeoutMs, async () => {
      const named = await Promise.all(this.liveSentinels().map((sentinel) => this.masterNamedBy(sentinel.address)));
      const ports = new Set(named.map((address) => address.port));
      if (ports.size !== 1 || ports.has(previous.port)) return undefined;
      const role = (await query(named[0], 'ROLE')) as unknown[];
      return role[0] === 'master' ? named[0] : undefined;
    });
  }

  private async masterNamedBy(sentinel: RedisAddress): Promise<RedisAddress> {
    const reply = await query(sentinel, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName);
    if (!Array.isArray(reply)) throw new Error(`Sentinel ${sentinel.port} does not know ${this.masterName}.`);
    return { host: String(reply[0]), port: Number(reply[1]) };
  }

  private liveSentinels(): ServerProcess[] {
    return this.sentinelProcesses.filter((node) => node.isRunning);
  }
}

// ---------------------------------------------------------------------------------------------
// Independent masters
// ---------------------------------------------------------------------------------------------

/** Unrelated single Redis servers, e.g. the N masters of a Redlock quorum. */
export interface IndependentMasters {
  readonly masters: readonly TestRedis[];
  /** Disposes every master (and the clients made by each `client()`). */
  disposeAll(): Promise<void>;
}

/** Starts `n` private redis-servers with {@link startTestRedis}; each can be stopped, killed or paused alone. */
export async function startIndependentMasters(n: number, args: string[] = []): Promise<IndependentMasters> {
  if (process.env.REDIS_URL) {
    throw new Error('Independent masters need their own redis-server processes; unset REDIS_URL to start them.');
  }
  const results = await Promise.allSettled(Array.from({ length: n }, () => startTestRedis(args)));
  const masters = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const disposeAll = async (): Promise<void> => {
    await Promise.all(masters.map((master) => master.dispose()));
  };
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) {
    await disposeAll();
    throw failure.reason;
  }
  return { masters, disposeAll };
}

// ---------------------------------------------------------------------------------------------
// Processes, ports and polling
// ---------------------------------------------------------------------------------------------

const tempDirs = new Set<string>();
const claimedPorts = new Set<number>();
// A crashed test run must not leave temp dirs behind (redis-server.ts kills the processes).
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** One redis-server (data node or sentinel) that can be killed and started again on its port. */
class ServerProcess {
  private child: ChildProcess | undefined;
  private log = '';

  constructor(
    readonly port: number,
    private readonly args: readonly string[],
  ) {}

  get address(): RedisAddress {
    return { host: HOST, port: this.port };
  }

  get isRunning(): boolean {
    return this.child !== undefined;
  }

  /** Spawns the server and resolves once it answers PING; kills it and rejects if it exits or hangs. */
  async start(): Promise<void> {
    if (this.child) throw new Error(`redis-server on port ${this.port} is already running`);
    const child = spawn('redis-server', this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(child);
    this.child = child;
    this.log = '';
    const keep = (chunk: Buffer): void => {
      this.log = (this.log + chunk.toString()).slice(-4_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    try {
      await waitFor(`redis-server on port ${this.port} to answer PING`, PROCESS_START_MS, async () => {
        if (this.child !== child) throw new GiveUp(`redis-server on port ${this.port} exited:\n${this.log}`);
        return (await query(this.address, 'PING')) === 'PONG' ? true : undefined;
      });
    } catch (error) {
      await this.kill();
      throw error;
    }
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server; a frozen one keeps its connections and answers nothing. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    this.child?.kill(signal);
  }

  /** SIGKILL, then waits for the exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.kill();
    claimedPorts.delete(this.port);
  }
}

/**
 * Runs `count` starts in parallel and returns the servers in order. Every server that did start is
 * added to `spawned` first, so the caller's dispose kills it even when another start failed.
 */
async function startAll(
  spawned: ServerProcess[],
  count: number,
  start: (n: number) => Promise<ServerProcess>,
): Promise<ServerProcess[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, (_, n) => start(n)));
  const servers = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  spawned.push(...servers);
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) throw failure.reason;
  return servers;
}

/** Starts a server on a port from `pickPort`, trying a new port when another process took it meanwhile. */
async function startWithFreshPort(
  pickPort: () => Promise<number>,
  args: (port: number) => string[],
): Promise<ServerProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await pickPort();
    const node = new ServerProcess(port, args(port));
    try {
      await node.start();
      return node;
    } catch (error) {
      lastError = error; // most likely the port was taken in between; try another
      await node.dispose();
    }
  }
  throw lastError;
}

/** Asks the OS for a free port, then lets it go for redis-server to take. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** Thrown by a probe to stop {@link waitFor} at once instead of retrying. */
class GiveUp extends Error {}

/** Polls `probe` until it returns a value; a thrown error counts as "not yet" unless it is a {@link GiveUp}. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'no answer';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = 'not yet';
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      last = error instanceof Error ? error.message : error;
    }
    if (Date.now() >= deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last: ${last}).`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Sends one command on a short-lived connection, bounded to one second. */
async function query(address: RedisAddress, command: string, ...args: Array<string | number>): Promise<unknown> {
  const client = new Redis({
    host: address.host,
    port: address.port,
    lazyConnect: true,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    disableClientInfo: true,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(command, ...args);
  } finally {
    client.disconnect();
  }
}

function runRedisCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Parses `INFO` / `CLUSTER INFO` text into `field → value`. */
function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** Turns a flat `[field, value, ...]` reply (e.g. `SENTINEL MASTER`) into a record. */
function pairsToRecord(reply: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  const items = Array.isArray(reply) ? reply : [];
  for (let i = 0; i + 1 < items.length; i += 2) fields[String(items[i])] = String(items[i + 1]);
  return fields;
}

function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

function hasBinary(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
