import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron } from '@nestjs/schedule';
import { Redlock as SesameRedlock } from '@sesamecare-oss/redlock';
import { Redis } from 'ioredis';
import { Mutex } from 'redis-semaphore';
import Redlock from 'redlock';
import {
  DistributedLock,
  DistributedLockModule,
  type DistributedLockOptions,
  DistributedLockService,
  type LockEventListener,
} from '../src';
import { holderToken, lockKeys } from '../src/core/keys';
import { runRecordFields } from '../src/core/fleet/fleet-records';
import { DEFAULT_LOCK_OPTIONS } from '../src/core/options/lock-options';
import { ACQUIRE, ACQUIRE_JOB, RELEASE_AND_RECORD, RELEASE_IF_OWNER } from '../src/core/redis/scripts';
import { benchTelemetry, type BenchTelemetry } from './open-telemetry-sdk';
import { telemetryFloor } from './telemetry-floor';

/** Every contender takes its locks with this TTL, long enough never to expire during a run. */
export const TTL_MS = 30_000;

/** One connection's worth of a lock implementation, doing a whole acquire + release per `cycle`. */
export interface Cycler {
  /** Acquires `key`, runs nothing, releases it; rejects when the lock was not granted. */
  cycle(key: string): Promise<void>;
  /** The decorator contenders: one call of a `@Cron` method guarded on `key`; true when it ran. */
  scheduled?(key: string): Promise<boolean>;
  /** The OpenTelemetry contenders: what the SDK recorded so far (spans ended, runs counted). */
  telemetrySeen?(): Promise<{ spans: number; runsCounted: number }>;
  close(): Promise<void>;
}

/** A lock implementation split into its two halves, for contention and held-lock memory. */
export interface LockClient {
  /** One attempt, no retry: an opaque handle when granted, `undefined` when held elsewhere. */
  tryAcquire(key: string): Promise<unknown>;
  release(held: unknown): Promise<void>;
  close(): Promise<void>;
}

export interface Contender {
  readonly id: string;
  readonly label: string;
  readonly kind: 'floor' | 'library' | 'alternative';
  /** What one cycle does, for the report. */
  readonly note: string;
  /** A decorator contender: its process can also call a `@Cron` handler (the MONITOR capture does). */
  readonly decorated?: boolean;
  open(url: string): Promise<Cycler>;
  /** This library's contenders: `open` on other connection options (the profiler's stub client). */
  openOn?(connection: Connection): Promise<Cycler>;
  /** Present when the contender can hold a lock outside a callback (contention, memory scenarios). */
  lockClient?(url: string): Promise<LockClient>;
}

class NotGrantedError extends Error {
  constructor(id: string, key: string) {
    super(`${id} did not get the free lock ${key}`);
  }
}

function connect(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  return client;
}

async function connected(client: Redis): Promise<Redis> {
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
  return client;
}

// ---------------------------------------------------------------------------------------------
// The floor: the fewest round trips and the least client work a correct lock can do.

/** The floor's release: delete the key while it holds our token. */
export const COMPARE_AND_DELETE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Raw ioredis: `SET key token NX PX ttl`, then EVALSHA of a preloaded compare-and-delete. With
 * `coalesce`, the socket is corked for the rest of the tick before each command, as this library
 * does on its own connections, so commands sent in one tick leave in one write.
 */
class FloorClient implements LockClient {
  // A random per-process prefix plus a counter: unique tokens without a random draw per call.
  private readonly prefix = randomBytes(12).toString('base64url');
  private counter = 0;
  private corked = false;

  private constructor(
    private readonly client: Redis,
    private readonly sha: string,
    private readonly coalesce: boolean,
  ) {}

  static async open(url: string, coalesce = false): Promise<FloorClient> {
    const client = await connected(connect(url));
    const sha = (await client.script('LOAD', COMPARE_AND_DELETE)) as string;
    return new FloorClient(client, sha, coalesce);
  }

  async tryAcquire(key: string): Promise<unknown> {
    const token = `${this.prefix}${++this.counter}`;
    this.holdWrites();
    const reply = await this.client.set(key, token, 'PX', TTL_MS, 'NX');
    return reply === 'OK' ? [key, token] : undefined;
  }

  async release(held: unknown): Promise<void> {
    const [key, token] = held as [string, string];
    this.holdWrites();
    await this.client.evalsha(this.sha, 1, key, token);
  }

  private holdWrites(): void {
    if (!this.coalesce || this.corked) return;
    this.corked = true;
    const socket = this.client.stream;
    socket.cork();
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  async cycle(key: string): Promise<void> {
    const held = await this.tryAcquire(key);
    if (!held) throw new NotGrantedError('floor', key);
    await this.release(held);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

/**
 * The floor again, but sending this library's fenced acquisition script (SET NX PX plus the
 * fencing counter, what `fencing: true` and cron ticks send) and its release script: what fencing
 * costs in Redis.
 */
class ScriptsFloorClient implements LockClient {
  private readonly prefix = randomBytes(12).toString('base64url');
  private counter = 0;

  private constructor(private readonly client: Redis) {}

  static async open(url: string): Promise<ScriptsFloorClient> {
    const client = await connected(connect(url));
    await Promise.all([ACQUIRE.load(client), RELEASE_IF_OWNER.load(client)]);
    return new ScriptsFloorClient(client);
  }

  async tryAcquire(key: string): Promise<unknown> {
    const token = `${this.prefix}${++this.counter}`;
    const { lock, state } = lockKeys('', key);
    // The arguments the engine sends for a fenced lock outside a job: no tick, no pause check
    // (the state hash stands in for the pause key), the default ahead bound and retention.
    const fence = await this.client.evalsha(
      ACQUIRE.sha,
      3,
      lock,
      state,
      state,
      token,
      TTL_MS,
      '',
      '1',
      'tick',
      60_000,
      DEFAULT_LOCK_OPTIONS.stateRetentionMs,
      '',
    );
    return Number(fence) > 0 ? [lock, token] : undefined;
  }

  async release(held: unknown): Promise<void> {
    const [lock, token] = held as [string, string];
    await this.client.evalsha(RELEASE_IF_OWNER.sha, 1, lock, token, 0);
  }

  async cycle(key: string): Promise<void> {
    const held = await this.tryAcquire(key);
    if (!held) throw new NotGrantedError('floor-scripts', key);
    await this.release(held);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

/** The job name of the fixed-name decorator contenders, as the library names it (`Class.method`). */
const FIXED_JOB = 'FixedNameJobs.noop';

/**
 * Raw ioredis sending, byte for byte, what a decorated call with a fixed lock name sends with
 * `operations` on (the default): ACQUIRE_JOB (the job's pause check, then SET NX PX), then
 * RELEASE_AND_RECORD, whose XADD appends the run record (job, replica, start, duration, outcome;
 * unset fields left out) to the lock name's history. Against `floor`, what operations cost in
 * Redis and on the wire; against `decorator-fixed`, what is left is the library's own client work.
 */
class OperationsFloorClient implements LockClient {
  // 128 random bits, as the library's token has: the same bytes on the wire.
  private readonly prefix = randomBytes(16).toString('base64url');
  private counter = 0;
  private readonly replica = `${hostname()}:${process.pid}`;

  private constructor(private readonly client: Redis) {}

  static async open(url: string): Promise<OperationsFloorClient> {
    const client = await connected(connect(url));
    await Promise.all([ACQUIRE_JOB.load(client), RELEASE_AND_RECORD.load(client)]);
    return new OperationsFloorClient(client);
  }

  async tryAcquire(key: string): Promise<unknown> {
    const acquiredAt = Date.now();
    const token = holderToken(`${this.prefix}.${(++this.counter).toString(36)}`, this.replica, acquiredAt);
    const keys = lockKeys('', key);
    const reply = await this.client.evalsha(ACQUIRE_JOB.sha, 2, keys.lock, keys.paused, token, TTL_MS, FIXED_JOB);
    return Number(reply) > 0 ? [keys, token, acquiredAt] : undefined;
  }

  async release(held: unknown): Promise<void> {
    const [keys, token, acquiredAt] = held as [ReturnType<typeof lockKeys>, string, number];
    const fields = runRecordFields({
      job: FIXED_JOB,
      replica: this.replica,
      tick: undefined,
      trigger: 'schedule',
      attempt: 1,
      startedAt: acquiredAt,
      durationMs: Date.now() - acquiredAt,
      outcome: 'ok',
      error: undefined,
      fencingToken: undefined,
    });
    await this.client.evalsha(
      RELEASE_AND_RECORD.sha,
      2,
      keys.lock,
      keys.runs,
      token,
      0,
      DEFAULT_LOCK_OPTIONS.historyLength,
      DEFAULT_LOCK_OPTIONS.historyRetentionMs,
      ...fields,
    );
  }

  async cycle(key: string): Promise<void> {
    const held = await this.tryAcquire(key);
    if (!held) throw new NotGrantedError('floor-operations', key);
    await this.release(held);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// This library, through a real Nest application context.

@Injectable()
class BenchJobs {
  /**
   * The decorated no-op with its lock name computed per call (a key factory): the name is its
   * argument, so concurrent workers take distinct locks. With `operations` on, such a name is
   * neither paused nor recorded: the call sends what it sends with `operations: false`.
   */
  @DistributedLock({ key: (key: string) => key, ttlMs: TTL_MS })
  async noop(_key: string): Promise<boolean> {
    return true;
  }

  /**
   * A `@Cron` handler (every minute; no ScheduleModule, so only a direct call runs it): a call
   * serves the minute's occurrence, and a second call in the same minute finds it served.
   */
  @Cron('0 * * * * *')
  @DistributedLock({ key: (key: string) => key, ttlMs: TTL_MS })
  async scheduled(_key: string): Promise<boolean> {
    return true;
  }
}

/**
 * Jobs with a fixed lock name, as most jobs are written: `@DistributedLock({ key: 'a literal',
 * ttlMs })`. With `operations` on (the default) such a job can be paused by name, so its
 * acquisition checks the pause flag (ACQUIRE_JOB), and each run is recorded in the name's history
 * (RELEASE_AND_RECORD). The bench names the lock of every call (one per throughput worker, one per
 * phase), so `fixedName` below decorates these methods again for each name it is given.
 */
@Injectable()
class FixedNameJobs {
  @DistributedLock({ key: 'bench:fixed', ttlMs: TTL_MS })
  async noop(): Promise<boolean> {
    return true;
  }

  @Cron('0 * * * * *')
  @DistributedLock({ key: 'bench:fixed-cron', ttlMs: TTL_MS })
  async scheduled(): Promise<boolean> {
    return true;
  }
}

type FixedNameMethod = (this: FixedNameJobs) => Promise<boolean>;
const fixedNameMethods = { noop: new Map<string, FixedNameMethod>(), scheduled: new Map<string, FixedNameMethod>() };

/**
 * `FixedNameJobs`'s `method` with `name` as its literal lock name: the same decorators applied, by
 * hand, to a fresh no-op, as TypeScript applies them when it defines the class; once per name, then
 * kept. Calling it on the provider's instance runs exactly what a method written
 * `@DistributedLock({ key: '<name>', ttlMs })` runs (job `FixedNameJobs.<method>`); the bench's own
 * lookup of the name is one Map.get per call.
 */
function fixedName(method: 'noop' | 'scheduled', name: string): FixedNameMethod {
  let decorated = fixedNameMethods[method].get(name);
  if (!decorated) {
    const descriptor: TypedPropertyDescriptor<FixedNameMethod> = {
      value: async function () {
        return true;
      },
      writable: true,
      configurable: true,
    };
    if (method === 'scheduled') Cron('0 * * * * *')(FixedNameJobs.prototype, method, descriptor);
    DistributedLock({ key: name, ttlMs: TTL_MS })(FixedNameJobs.prototype, method, descriptor);
    decorated = descriptor.value!;
    fixedNameMethods[method].set(name, decorated);
  }
  return decorated;
}

/** A Nest application context with `DistributedLockModule.forRoot({ url })` (or other options) and the decorated providers. */
export async function createLockApp(target: string | DistributedLockOptions): Promise<INestApplicationContext> {
  const options = typeof target === 'string' ? { url: target } : target;
  @Module({
    imports: [DistributedLockModule.forRoot({ ...options, logger: false })],
    providers: [BenchJobs, FixedNameJobs],
  })
  class BenchModule {}
  return NestFactory.createApplicationContext(BenchModule, { logger: false, abortOnError: false });
}

/**
 * The decorated no-op with a fixed lock name, of an application opened with any module `options`
 * (option-costs.ts): the name is fixed, so `operations` on pauses and records it.
 */
export async function openDecorated(options: DistributedLockOptions): Promise<Cycler> {
  const app = await createLockApp(options);
  const jobs = app.get(FixedNameJobs);
  return {
    async cycle(key) {
      if ((await fixedName('noop', key).call(jobs)) !== true) throw new NotGrantedError('decorator', key);
    },
    close: () => app.close(),
  };
}

/** Where a library contender's module connects: a URL, or a client of the caller's. */
export type Connection = Pick<DistributedLockOptions, 'url' | 'client'>;

/**
 * What a library contender turns on. `operations` is on by default in the library, the rest off;
 * each variant below changes one thing from `operations: false`, or turns everything on.
 */
interface Features {
  operations: boolean;
  /** `onEvent`: a listener that does nothing, so what is measured is building and emitting the events. */
  events: boolean;
  /** `openTelemetry` with the real SDK's providers (see open-telemetry-sdk.ts). */
  openTelemetry: boolean;
}

const DEFAULTS: Features = { operations: true, events: false, openTelemetry: false };
const ignoreEvent: LockEventListener = () => undefined;

/** A Nest application with the module configured for `features`, and how to close it (SDK included). */
async function openApp(
  connection: Connection,
  features: Features,
): Promise<{ app: INestApplicationContext; telemetry: BenchTelemetry | undefined; close(): Promise<void> }> {
  const telemetry = features.openTelemetry ? benchTelemetry() : undefined;
  const app = await createLockApp({
    ...connection,
    ...(features.operations ? {} : { operations: false }),
    ...(features.events ? { onEvent: ignoreEvent } : {}),
    ...(telemetry ? { openTelemetry: telemetry.options } : {}),
  });
  return {
    app,
    telemetry,
    async close() {
      await app.close();
      await telemetry?.shutdown();
    },
  };
}

async function openService(
  connection: Connection,
  features = DEFAULTS,
): Promise<Cycler & { service: DistributedLockService }> {
  const { app, telemetry, close } = await openApp(connection, features);
  const service = app.get(DistributedLockService);
  return {
    service,
    async cycle(key) {
      if (!(await service.acquireLock(key, TTL_MS))) throw new NotGrantedError('service', key);
      await service.releaseLock(key);
    },
    telemetrySeen: telemetry && (() => telemetry.seen()),
    close,
  };
}

const noop = async (): Promise<boolean> => true;

function withLockContender(id: string, label: string, note: string, features: Features): Contender {
  const openOn = async (connection: Connection): Promise<Cycler> => {
    const { service, telemetrySeen, close } = await openService(connection, features);
    return {
      async cycle(key) {
        if (!(await service.withLock(key, TTL_MS, noop)).ran) throw new NotGrantedError(id, key);
      },
      telemetrySeen,
      close,
    };
  };
  return { id, label, kind: 'library', note, open: (url) => openOn({ url }), openOn };
}

/**
 * A decorated no-op's calls: with its lock name computed per call (`BenchJobs`, a key factory), or
 * fixed (`FixedNameJobs`, a literal key per lock name the bench uses).
 */
function decoratorContender(
  id: string,
  label: string,
  note: string,
  features: Features,
  lockName: 'computed' | 'fixed',
): Contender {
  const openOn = async (connection: Connection): Promise<Cycler> => {
    const { app, telemetry, close } = await openApp(connection, features);
    const telemetrySeen = telemetry && (() => telemetry.seen());
    if (lockName === 'computed') {
      const jobs = app.get(BenchJobs);
      return {
        async cycle(key) {
          if ((await jobs.noop(key)) !== true) throw new NotGrantedError(id, key);
        },
        scheduled: async (key) => (await jobs.scheduled(key)) === true,
        telemetrySeen,
        close,
      };
    }
    const jobs = app.get(FixedNameJobs);
    return {
      async cycle(key) {
        if ((await fixedName('noop', key).call(jobs)) !== true) throw new NotGrantedError(id, key);
      },
      scheduled: async (key) => (await fixedName('scheduled', key).call(jobs)) === true,
      telemetrySeen,
      close,
    };
  };
  return { id, label, kind: 'library', note, decorated: true, open: (url) => openOn({ url }), openOn };
}

const OFF: Features = { operations: false, events: false, openTelemetry: false };
const ALL_ON: Features = { operations: true, events: true, openTelemetry: true };
const OTEL_NOTE =
  'the real SDK: a MeterProvider with a periodic in-memory reader, a BasicTracerProvider recording every span, a span processor that drops them';

// ---------------------------------------------------------------------------------------------
// The alternatives, one client each, retries off.

/** Both Redlock flavours throw when a resource is locked; with retryCount 0 that is one attempt. */
interface RedlockLike {
  acquire(resources: string[], duration: number): Promise<{ release(): Promise<unknown> }>;
  using<T>(resources: string[], duration: number, routine: () => Promise<T>): Promise<T>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

function redlockClient(id: string, client: Redis, redlock: RedlockLike): LockClient & Cycler {
  // Redlock emits every refused vote as an 'error' event; unhandled, the EventEmitter would throw.
  redlock.on('error', () => undefined);
  return {
    async tryAcquire(key) {
      try {
        return await redlock.acquire([key], TTL_MS);
      } catch {
        return undefined;
      }
    },
    async release(held) {
      await (held as { release(): Promise<unknown> }).release();
    },
    async cycle(key) {
      const lock = await redlock.acquire([key], TTL_MS).catch(() => {
        throw new NotGrantedError(id, key);
      });
      await lock.release();
    },
    async close() {
      client.disconnect();
    },
  };
}

function redlockUsing(id: string, client: Redis, redlock: RedlockLike): Cycler {
  redlock.on('error', () => undefined);
  return {
    async cycle(key) {
      if ((await redlock.using([key], TTL_MS, noop)) !== true) throw new NotGrantedError(id, key);
    },
    async close() {
      client.disconnect();
    },
  };
}

const REDLOCK_SETTINGS = { retryCount: 0 };

async function openRedlock(url: string): Promise<[Redis, RedlockLike]> {
  const client = await connected(connect(url));
  return [client, new Redlock([client], REDLOCK_SETTINGS) as unknown as RedlockLike];
}

async function openSesame(url: string): Promise<[Redis, RedlockLike]> {
  const client = await connected(connect(url));
  return [client, new SesameRedlock([client], REDLOCK_SETTINGS) as unknown as RedlockLike];
}

/**
 * redis-semaphore's Mutex: one instance per acquisition (its identifier, a randomUUID, is drawn per
 * instance). `refreshInterval: 0` turns off its refresh timer, like `acquireLock` and Redlock's
 * `acquire`; `acquireAttemptsLimit: 1` makes one attempt; a failed attempt still waits
 * `retryInterval` before giving up, so that is set to 0.
 */
function semaphoreClient(client: Redis): LockClient & Cycler {
  const options = { lockTimeout: TTL_MS, acquireAttemptsLimit: 1, retryInterval: 0, refreshInterval: 0 };
  return {
    async tryAcquire(key) {
      const mutex = new Mutex(client, key, options);
      return (await mutex.tryAcquire()) ? mutex : undefined;
    },
    async release(held) {
      await (held as Mutex).release();
    },
    async cycle(key) {
      const mutex = new Mutex(client, key, options);
      if (!(await mutex.tryAcquire())) throw new NotGrantedError('redis-semaphore', key);
      await mutex.release();
    },
    async close() {
      client.disconnect();
    },
  };
}

// ---------------------------------------------------------------------------------------------

const FLOOR: Contender = {
  id: 'floor',
  label: 'floor (ioredis SET NX PX + EVALSHA)',
  kind: 'floor',
  note: 'SET key token PX ttl NX, then EVALSHA of a preloaded compare-and-delete; token = random prefix + counter',
  open: (url) => FloorClient.open(url),
  lockClient: (url) => FloorClient.open(url),
};

export const CONTENDERS: Contender[] = [
  FLOOR,
  {
    ...FLOOR,
    id: 'floor-again',
    label: 'the floor again, in a process of its own',
    note: 'the floor unchanged, as a second contender: how far apart two identical contenders land in one run',
  },
  {
    id: 'floor-coalesced',
    label: 'floor, writes coalesced per tick',
    kind: 'floor',
    note: 'the floor, corking the socket until the end of the tick before each command, as this library does on its own connection: commands sent in one tick leave in one write',
    open: (url) => FloorClient.open(url, true),
    lockClient: (url) => FloorClient.open(url, true),
  },
  {
    id: 'floor-scripts',
    label: "floor with this library's fenced-acquire script",
    kind: 'floor',
    note: "raw ioredis EVALSHA of the library's fenced acquire script (SET NX PX + fencing counter, as with fencing: true), then EVALSHA of its release script",
    open: (url) => ScriptsFloorClient.open(url),
    lockClient: (url) => ScriptsFloorClient.open(url),
  },
  {
    id: 'floor-operations',
    label: 'floor sending what a fixed-name decorated call sends (operations on)',
    kind: 'floor',
    note: "raw ioredis EVALSHA of the library's ACQUIRE_JOB script (a job's pause check, then SET NX PX), then EVALSHA of RELEASE_AND_RECORD (compare-and-delete plus XADD of the run record, unset fields left out), the same bytes a fixed-name decorated call sends with operations on",
    open: (url) => OperationsFloorClient.open(url),
    lockClient: (url) => OperationsFloorClient.open(url),
  },
  {
    id: 'floor-otel',
    label: 'floor plus the OpenTelemetry SDK calls of a guarded run',
    kind: 'floor',
    note: `the floor's cycle plus, by hand, the SDK calls this library makes per run of a fixed-name job (the acquisition's latency recorded, a span around the run, the run counted and its duration recorded), on ${OTEL_NOTE}; against decorator-otel, the library's own share of what OpenTelemetry adds`,
    open: async (url) => telemetryFloor(await FloorClient.open(url), benchTelemetry(), FIXED_JOB),
  },
  {
    id: 'service',
    label: 'this library: acquireLock/releaseLock',
    kind: 'library',
    note: 'DistributedLockService.acquireLock(key, ttl) then releaseLock(key), default options (operations on: the token names its holder)',
    open: (url) => openService({ url }),
    openOn: (connection) => openService(connection),
    async lockClient(url) {
      // A replica in the contention race: the service as DistributedLockModule provides it, minus Nest.
      const service = new DistributedLockService({ url, logger: false });
      await service.waitUntilConnected();
      return {
        tryAcquire: async (key) => ((await service.acquireLock(key, TTL_MS)) ? key : undefined),
        release: (held) => service.releaseLock(held as string),
        close: () => service.close(),
      };
    },
  },
  withLockContender(
    'withLock',
    'this library: withLock',
    'DistributedLockService.withLock(key, ttl, noop) (auto-extension timer on, the default), default options (operations on: outside a job it only makes the token name its holder)',
    DEFAULTS,
  ),
  withLockContender(
    'withLock-ops-off',
    'this library: withLock, operations off',
    'withLock as above with operations: false (a token without its holder and time)',
    OFF,
  ),
  withLockContender(
    'withLock-all',
    'this library: withLock, operations + onEvent + OpenTelemetry',
    `withLock with operations on, a no-op onEvent listener and openTelemetry: { meterProvider, tracerProvider } of ${OTEL_NOTE}`,
    ALL_ON,
  ),
  decoratorContender(
    'decorator',
    'this library: @DistributedLock, lock name computed per call (default options)',
    'a call of an @DistributedLock({ key: (k) => k, ttlMs }) no-op method of a Nest provider, default options (operations on): a name computed per call is neither paused nor recorded, so the call sends SET NX PX, then the compare-and-delete, as with operations: false',
    DEFAULTS,
    'computed',
  ),
  decoratorContender(
    'decorator-fixed',
    'this library: @DistributedLock, fixed lock name (default: operations on)',
    "a call of an @DistributedLock({ key: '<name>', ttlMs }) no-op method, a literal name per lock name the bench uses (decorated once per name), default options: operations on, so the acquisition is ACQUIRE_JOB (pause check, then SET NX PX) and the release RELEASE_AND_RECORD (compare-and-delete plus XADD of the run record)",
    DEFAULTS,
    'fixed',
  ),
  decoratorContender(
    'decorator-fixed-ops-off',
    'this library: @DistributedLock, fixed lock name, operations off',
    'the fixed-name decorated call with operations: false: SET NX PX, then the compare-and-delete',
    OFF,
    'fixed',
  ),
  decoratorContender(
    'decorator-events',
    'this library: @DistributedLock, fixed name + onEvent (operations off)',
    'the fixed-name decorated call, operations: false, onEvent: a listener that does nothing; each call builds and emits its acquired and ran events',
    { ...OFF, events: true },
    'fixed',
  ),
  decoratorContender(
    'decorator-otel',
    'this library: @DistributedLock, fixed name + OpenTelemetry (operations off)',
    `the fixed-name decorated call, operations: false, openTelemetry: { meterProvider, tracerProvider } of ${OTEL_NOTE}; each call records its acquisition and run in counters and histograms and a span around the run`,
    { ...OFF, openTelemetry: true },
    'fixed',
  ),
  decoratorContender(
    'decorator-all',
    'this library: @DistributedLock, fixed name, all on (operations + onEvent + OpenTelemetry)',
    `the fixed-name decorated call with operations on, a no-op onEvent listener and openTelemetry with ${OTEL_NOTE}`,
    ALL_ON,
    'fixed',
  ),
  {
    id: 'redlock',
    label: 'redlock 5 (beta): acquire/release',
    kind: 'alternative',
    note: 'new Redlock([client], { retryCount: 0 }); acquire([key], ttl) then lock.release()',
    open: async (url) => redlockClient('redlock', ...(await openRedlock(url))),
    lockClient: async (url) => redlockClient('redlock', ...(await openRedlock(url))),
  },
  {
    id: 'redlock-using',
    label: 'redlock 5 (beta): using',
    kind: 'alternative',
    note: 'redlock.using([key], ttl, noop) (auto-extension timer on, its default)',
    open: async (url) => redlockUsing('redlock-using', ...(await openRedlock(url))),
  },
  {
    id: 'sesame',
    label: '@sesamecare-oss/redlock: acquire/release',
    kind: 'alternative',
    note: 'new Redlock([client], { retryCount: 0 }); acquire([key], ttl) then lock.release()',
    open: async (url) => redlockClient('sesame', ...(await openSesame(url))),
    lockClient: async (url) => redlockClient('sesame', ...(await openSesame(url))),
  },
  {
    id: 'sesame-using',
    label: '@sesamecare-oss/redlock: using',
    kind: 'alternative',
    note: 'redlock.using([key], ttl, noop) (auto-extension timer on, its default)',
    open: async (url) => redlockUsing('sesame-using', ...(await openSesame(url))),
  },
  {
    id: 'semaphore',
    label: 'redis-semaphore: Mutex',
    kind: 'alternative',
    note: 'new Mutex(client, key, { refreshInterval: 0, acquireAttemptsLimit: 1 }); tryAcquire() then release()',
    open: async (url) => semaphoreClient(await connected(connect(url))),
    lockClient: async (url) => semaphoreClient(await connected(connect(url))),
  },
];
