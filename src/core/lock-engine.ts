import type { Cluster, Redis } from 'ioredis';
import { DistributedLockError, InvalidLockArgumentError, type LockLostError } from './errors';
import { runWithLock } from './lock-context';
import { LockHandle, type LockIssuer } from './lock-handle';
import { type DistributedLockOptions, type ResolvedLockOptions, resolveLockOptions } from './lock-options';
import type { AcquireReply, LockRequest, LockStore } from './lock-store';
import { createToken } from './token';
import { createLockStore } from './redis/redis-client.factory';
import { RedisStore } from './redis/redis-store';
import { type Expectation, expectations } from './validation';

/** What `withLock` reports: whether `fn` ran, and its result when it did. */
export type LockedRun<T> = { ran: true; result: T } | { ran: false };

/** Options of `acquire` and `withLock`. */
export interface AcquireOptions {
  /** Keep the lock at least this long after acquisition, even if released sooner (ShedLock's lockAtLeastFor). @default 0 */
  minHoldMs?: number;
  /** How long to keep retrying while the lock is held elsewhere. @default 0 (one attempt) */
  waitMs?: number;
  /** First retry delay; it doubles per attempt up to `maxRetryDelayMs`, with random jitter. @default 50 */
  retryDelayMs?: number;
  /** @default 1000 */
  maxRetryDelayMs?: number;
  /** Cancels the wait: `acquire` rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * The scheduled run this acquisition serves, as a time. An acquisition for a tick at or before
   * the latest tick already served for this key is refused, whoever served it. `@DistributedLock`
   * passes the cron tick itself.
   */
  tick?: number | Date;
  /** Extend the lock every third of its TTL while held, and abort its signal if that fails. Default: on in `withLock`, off in `acquire`. */
  autoExtend?: boolean;
  /**
   * Issue a fencing token (`lock.fencingToken`), a number that grows with every fenced
   * acquisition of the key. It costs a Lua call instead of a plain `SET NX PX`. Default: the
   * engine's `fencing` option (off unless set).
   */
  fencing?: boolean;
  /**
   * `withLock` and the decorator: keep the lock as `currentLock()` across the run's awaits, in
   * everything it calls (AsyncLocalStorage). Without it, `currentLock()` answers until the run's
   * first `await`. On Node < 24 the first such run slows every later promise of the process
   * (AsyncLocalStorage's promise hooks), so it is off by default. @default false
   */
  lockContext?: boolean;
}

/** What one acquisition round trip came to: the new lock, or why there is none. */
type Attempt = LockHandle | 'held' | 'tick-served' | 'unavailable';

/** `AcquireOptions` after checking, with defaults filled in (`fencing` stays unset for the engine's default). */
export interface AcquireSettings {
  readonly minHoldMs: number;
  readonly waitMs: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly tick: number | undefined;
  readonly fencing: boolean | undefined;
  readonly autoExtend: boolean;
  readonly lockContext: boolean;
  readonly signal: AbortSignal | undefined;
}

/** How many acquisitions pass between two sweeps of expired, unreleased locks (amortized O(1)). */
const SWEEP_EVERY_GRANTS = 1024;

const RESOLVED: Promise<void> = Promise.resolve();
const ACQUIRING: unique symbol = Symbol('acquisition in flight');
const NOT_RAN: { ran: false } = Object.freeze({ ran: false });
const same = <T>(value: T): T => value;
const isLock = (attempt: Attempt): attempt is LockHandle => typeof attempt !== 'string';

/**
 * Mutual exclusion across processes on one Redis, with no framework attached.
 *
 * A lock `key` is the string `<keyPrefix>lock:{<key>}` holding a unique token, taken with
 * `SET NX PX`. A fenced acquisition, or one serving a scheduled tick, runs the same `SET` inside a
 * Lua call that also keeps the key's fencing counter and last tick in the hash
 * `<keyPrefix>lock:{<key>}:state`. Only the holder of the token can release or extend it. Locks
 * are not reentrant: asking again for a key this instance already holds returns `false`.
 *
 * @example
 * const locks = new LockEngine({ url: 'redis://localhost:6379' });
 * const outcome = await locks.withLock('reports:nightly', 60_000, () => buildReport());
 * if (!outcome.ran) console.log('another process is building it');
 */
export class LockEngine implements LockIssuer {
  protected readonly options: ResolvedLockOptions;
  private readonly store: LockStore;
  /**
   * By lock name as given (building the Redis key would cost a hash per lookup): the lock taken
   * last, held or not, or ACQUIRING while an acquisition is in flight, so a concurrent one in this
   * instance is refused at once. Released locks stay until the next acquisition of their name or
   * the next sweep: replacing an entry is cheaper than deleting and re-adding it.
   */
  private readonly held = new Map<string, LockHandle | typeof ACQUIRING>();
  private closed = false;
  private grantsSinceSweep = 0;
  private readonly failOpen: boolean;
  /** What `acquireLock` asks for: one attempt, no minimum hold, the engine's fencing default. */
  private readonly plainSettings: AcquireSettings;

  constructor(options: DistributedLockOptions = {}) {
    this.options = resolveLockOptions(options);
    this.failOpen = this.options.failMode === 'open';
    this.plainSettings = checkAcquireOptions({}, false);
    const whileDown = this.options.failMode === 'open' ? 'guarded jobs run without a lock' : 'guarded jobs are skipped';
    this.store = createLockStore(this.options.target, this.options.acquireTimeoutMs, this.options.logger, whileDown);
  }

  /**
   * The ioredis client in use: the one given as `client`, or the one the engine opened (a `Cluster`
   * for `clusterNodes`). A quorum (`nodes`) has one per node and no single client.
   */
  get client(): Redis | Cluster {
    if (!(this.store instanceof RedisStore)) {
      throw new DistributedLockError(`A quorum of Redis nodes has no single client (${this.store.label}).`);
    }
    return this.store.client;
  }

  /** True while Redis is up and ready for commands (for a quorum: a majority of its nodes). */
  isConnected(): boolean {
    return this.store.isReady();
  }

  /**
   * The Redis keys of lock `key`: the lock itself and its state hash (fencing counter, last tick).
   * Both carry the hash tag `{<key>}`, so they share a Redis Cluster slot.
   */
  keysFor(key: string): { lock: string; state: string } {
    const lock = this.lockKeyOf(key);
    return { lock, state: stateKeyOf(lock) };
  }

  /**
   * Takes the lock `key` for `ttlMs` unless someone holds it. Resolves `true` when this instance
   * now holds it, `false` when another holder (or this instance, already) has it. When Redis
   * cannot answer within `acquireTimeoutMs`, the fail mode decides: `open` → `true`, `closed` → `false`.
   */
  acquireLock(key: string, ttlMs: number): Promise<boolean> {
    try {
      assertLockArguments(key, ttlMs);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.attempt(key, ttlMs, this.plainSettings, undefined, isLock);
  }

  /**
   * Releases `key` if this instance holds it, with a compare-and-delete on its token, so a lock
   * that expired and was taken by another holder is left alone. Releasing a key this instance does
   * not hold does nothing. Never rejects: if Redis is down, the lock expires by its TTL.
   */
  releaseLock(key: string): Promise<void> {
    try {
      assertKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    const lock = this.lockNamed(key);
    return lock ? this.releaseHeld(lock) : RESOLVED;
  }

  /**
   * Sets the TTL of a lock this instance holds to `ttlMs` from now. Resolves `false` when the lock
   * is no longer ours (expired, or taken over) or Redis cannot answer in time.
   */
  async extendLock(key: string, ttlMs: number): Promise<boolean> {
    assertLockArguments(key, ttlMs);
    const lock = this.lockNamed(key);
    return lock ? lock.extend(ttlMs) : false;
  }

  /** True while this instance holds `key` by its own reckoning (taken, not released, TTL not passed). */
  holdsLock(key: string): boolean {
    assertKey(key);
    return this.lockNamed(key)?.isHeld ?? false;
  }

  /**
   * The fencing token of the lock this instance holds on `key`: a number that grows with every
   * fenced acquisition of the key, so a downstream store can refuse writes carrying an older one.
   * `undefined` when not held, taken without `fencing`, or held without Redis (fail-open).
   */
  fencingToken(key: string): number | undefined {
    assertKey(key);
    const lock = this.lockNamed(key);
    return lock?.isHeld ? lock.fencingToken : undefined;
  }

  /**
   * Takes the lock and returns its handle, or `undefined` when it stays held elsewhere until
   * `waitMs` has passed. Retries back off exponentially with jitter; `signal` cancels the wait.
   *
   * @example
   * const lock = await lockService.acquire('ledger', 10_000, { waitMs: 5_000, signal });
   * if (!lock) return;
   * try { await work(lock.fencingToken); } finally { await lock.release(); }
   */
  async acquire(key: string, ttlMs: number, options: AcquireOptions = {}): Promise<LockHandle | undefined> {
    assertLockArguments(key, ttlMs);
    const settings = checkAcquireOptions(options, false);
    return this.acquireChecked(key, ttlMs, settings, settings.tick);
  }

  /**
   * Runs `fn` only if the lock is acquired and releases it afterwards, also when `fn` throws (the
   * error propagates). The lock is extended while `fn` runs (`autoExtend: false` to opt out);
   * `fn` receives the handle, also reachable as `currentLock()` (see `lockContext`).
   *
   * @example
   * const outcome = await lockService.withLock('invoices:send', 30_000, () => this.sendInvoices());
   * if (outcome.ran) console.log('sent', outcome.result);
   */
  async withLock<T>(
    key: string,
    ttlMs: number,
    fn: (lock: LockHandle) => T | Promise<T>,
    options: AcquireOptions = {},
  ): Promise<LockedRun<Awaited<T>>> {
    assertLockArguments(key, ttlMs);
    const settings = checkAcquireOptions(options, true);
    return this.runLocked(key, ttlMs, fn, settings, settings.tick);
  }

  /**
   * Runs a guarded job (what `@DistributedLock` calls): `fn` when the lock is taken, nothing
   * (resolving `undefined`, logged at debug level) when it is held elsewhere or its tick was served.
   */
  async runJob<T>(
    jobName: string,
    key: string,
    ttlMs: number,
    fn: () => T | Promise<T>,
    options: AcquireOptions = {},
  ): Promise<Awaited<T> | undefined> {
    assertLockArguments(key, ttlMs);
    const settings = checkAcquireOptions(options, true);
    return this.runGuarded(jobName, key, ttlMs, fn, settings, settings.tick);
  }

  /** @internal `runJob` with options checked beforehand, as the decorator does once per method. */
  async runGuarded<T>(
    jobName: string,
    key: string,
    ttlMs: number,
    fn: () => T | Promise<T>,
    settings: AcquireSettings,
    tick: number | undefined,
  ): Promise<Awaited<T> | undefined> {
    const outcome = await this.runLocked(key, ttlMs, fn, settings, tick);
    if (outcome.ran) return outcome.result;
    this.options.logger.debug?.(`Skipped ${jobName}: lock "${key}" is held elsewhere or its tick was already run.`);
    return undefined;
  }

  /**
   * Waits up to `timeoutMs` (default `acquireTimeoutMs`) for the connection. Resolves whether it is up;
   * never rejects, so a replica can start while Redis is down.
   */
  waitUntilConnected(timeoutMs = this.options.acquireTimeoutMs): Promise<boolean> {
    return this.store.waitForReady(timeoutMs);
  }

  /**
   * Releases every lock this instance holds and closes the connection it opened (a client passed
   * as `client` stays open). Later acquisitions resolve `false`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.held.keys()].map((key) => this.lockNamed(key)?.release()));
    await this.store.close();
  }

  /** @internal */
  async extendHeld(lock: LockHandle, ttlMs: number): Promise<'extended' | 'lost' | 'unknown'> {
    const reply = await this.store.extend(lock.storedKey, lock.token, ttlMs);
    return reply === 'done' ? 'extended' : reply === 'not-owner' ? 'lost' : 'unknown';
  }

  /** @internal How much of a TTL the holder discounts for clock drift between it and Redis. */
  driftMs(ttlMs: number): number {
    return this.store.driftMs(ttlMs);
  }

  /** @internal */
  releaseHeld(lock: LockHandle): Promise<void> {
    if (!lock.markReleased()) return RESOLVED;
    const holdMs = lock.minHoldMs === 0 ? 0 : Math.max(0, Math.ceil(lock.minHoldMs - (Date.now() - lock.acquiredAt)));
    return this.store.release(lock.storedKey, lock.token, holdMs, (reply) => {
      if (reply === 'not-owner' && !lock.withoutRedis) {
        this.options.logger.debug?.(`Lock ${lock.storedKey} had expired before its release; it was not deleted.`);
      }
    });
  }

  /** @internal */
  lockLost(error: LockLostError): void {
    this.options.logger.error(error.message);
  }

  private lockKeyOf(key: string): string {
    return `${this.options.keyPrefix}lock:{${key}}`;
  }

  /** `acquire` after its arguments are checked: one attempt, or retries until `waitMs` has passed. */
  private acquireChecked(
    key: string,
    ttlMs: number,
    settings: AcquireSettings,
    tick: number | undefined,
  ): Promise<LockHandle | undefined> {
    if (settings.waitMs > 0 || settings.signal) return this.acquireWithRetries(key, ttlMs, settings, tick);
    return this.attempt(key, ttlMs, settings, tick, (attempt) => this.handOver(attempt, settings));
  }

  private async acquireWithRetries(
    key: string,
    ttlMs: number,
    settings: AcquireSettings,
    tick: number | undefined,
  ): Promise<LockHandle | undefined> {
    const { signal } = settings;
    const deadline = Date.now() + settings.waitMs;
    for (let retry = 0; ; retry++) {
      signal?.throwIfAborted();
      const attempt = await this.attempt(key, ttlMs, settings, tick, same);
      if (isLock(attempt)) {
        if (signal?.aborted) {
          await attempt.release();
          signal.throwIfAborted();
        }
        return this.handOver(attempt, settings);
      }
      const remainingMs = deadline - Date.now();
      if (attempt === 'tick-served' || remainingMs <= 0 || this.closed) return undefined;
      const backoffMs = Math.min(settings.maxRetryDelayMs, settings.retryDelayMs * 2 ** Math.min(retry, 30));
      // Equal jitter: replicas that collided once do not retry in lockstep.
      await sleep(Math.min(remainingMs, backoffMs / 2 + Math.random() * (backoffMs / 2)), signal);
    }
  }

  private handOver(attempt: Attempt, settings: AcquireSettings): LockHandle | undefined {
    if (!isLock(attempt)) return undefined;
    if (settings.autoExtend) attempt.keepAlive();
    return attempt;
  }

  /** Runs `fn` holding the lock, and releases it however `fn` ends. */
  private async runLocked<T>(
    key: string,
    ttlMs: number,
    fn: (lock: LockHandle) => T | Promise<T>,
    settings: AcquireSettings,
    tick: number | undefined,
  ): Promise<LockedRun<Awaited<T>>> {
    const lock = await this.acquireChecked(key, ttlMs, settings, tick);
    if (!lock) return NOT_RAN;
    try {
      return { ran: true, result: await runWithLock(lock, fn, settings.lockContext) };
    } finally {
      await lock.release();
    }
  }

  /**
   * One acquisition round trip, deciding by the fail mode when Redis cannot answer in time. The
   * store hands its reply to `then`, so no promise is added between Redis and the caller.
   */
  private attempt<R>(
    key: string,
    ttlMs: number,
    settings: AcquireSettings,
    tick: number | undefined,
    then: (attempt: Attempt) => R,
  ): Promise<R> {
    const previous = this.held.get(key);
    if (this.closed || previous === ACQUIRING || previous?.isHeld) return Promise.resolve(then('held'));
    const lockKey = this.lockKeyOf(key);
    const fencing = settings.fencing ?? this.options.fencing;
    const request: LockRequest = {
      lockKey,
      stateKey: tick === undefined && !fencing ? '' : stateKeyOf(lockKey),
      token: createToken(),
      ttlMs,
      tick,
      fencing,
    };
    const requestedAt = Date.now();
    this.held.set(key, ACQUIRING);
    // Under fail-open the handle keeps the token, and its release deletes a late acquisition.
    return this.store.acquire(request, !this.failOpen, (reply) => {
      const attempt = this.decide(key, request, reply, settings.minHoldMs, requestedAt);
      if (isLock(attempt)) this.held.set(key, attempt);
      else if (previous) this.held.set(key, previous);
      else this.held.delete(key);
      return then(attempt);
    });
  }

  private decide(
    key: string,
    request: LockRequest,
    reply: AcquireReply,
    minHoldMs: number,
    requestedAt: number,
  ): Attempt {
    if (reply.kind === 'held' || reply.kind === 'tick-served') return reply.kind;
    const withoutRedis = reply.kind === 'unavailable';
    if (withoutRedis && !this.failOpen) return 'unavailable';
    // One object of the final shape: copying a half-built one cost more than the rest of the call.
    const lock = new LockHandle(this, {
      key,
      storedKey: request.lockKey,
      token: request.token,
      ttlMs: request.ttlMs,
      minHoldMs,
      tick: request.tick,
      requestedAt,
      driftMs: this.store.driftMs(request.ttlMs),
      fencingToken: reply.kind === 'acquired' ? reply.fencingToken : undefined,
      withoutRedis,
    });
    if (++this.grantsSinceSweep >= SWEEP_EVERY_GRANTS) this.forgetExpired();
    return lock;
  }

  /** Drops released locks and those left to expire, so names never taken again do not pile up. */
  private forgetExpired(): void {
    this.grantsSinceSweep = 0;
    for (const [key, lock] of this.held) {
      if (lock === ACQUIRING || lock.isHeld) continue;
      lock.markReleased(); // stops the renewal of one left to expire
      this.held.delete(key);
    }
  }

  /** The lock last taken under `key`, held or not. */
  private lockNamed(key: string): LockHandle | undefined {
    const lock = this.held.get(key);
    return lock === ACQUIRING ? undefined : lock;
  }
}

/** Validates a lock name and TTL, throwing a `TypeError` that names the bad value. */
export function assertLockArguments(key: unknown, ttlMs: unknown): void {
  assertKey(key);
  assertTtl(ttlMs);
}

/** Validates a lock TTL: a positive integer number of ms that a timer can hold. */
export function assertTtl(ttlMs: unknown): asserts ttlMs is number {
  assertArgument('ttlMs', ttlMs, expectations.positiveMs);
}

function assertKey(key: unknown): asserts key is string {
  assertArgument('key', key, expectations.nonEmptyString);
}

function assertArgument<T>(name: string, value: unknown, rule: Expectation<T>): asserts value is T {
  if (!rule.test(value)) throw new InvalidLockArgumentError(name, value, rule.expected);
}

/**
 * Checks `AcquireOptions` (and so the decorator's) and fills in defaults; `autoExtend` defaults to
 * `autoExtendByDefault` (on for `withLock` and the decorator, off for `acquire`).
 */
export function checkAcquireOptions(options: AcquireOptions, autoExtendByDefault: boolean): AcquireSettings {
  const {
    minHoldMs = 0,
    waitMs = 0,
    retryDelayMs = 50,
    maxRetryDelayMs = 1000,
    tick,
    signal,
    fencing,
    autoExtend = autoExtendByDefault,
    lockContext = false,
  } = options;
  assertArgument('minHoldMs', minHoldMs, expectations.nonNegativeMs);
  assertArgument('waitMs', waitMs, expectations.nonNegativeMs);
  assertArgument('retryDelayMs', retryDelayMs, expectations.positiveMs);
  assertArgument('maxRetryDelayMs', maxRetryDelayMs, expectations.positiveMs);
  assertArgument('autoExtend', autoExtend, expectations.boolean);
  assertArgument('lockContext', lockContext, expectations.boolean);
  if (fencing !== undefined) assertArgument('fencing', fencing, expectations.boolean);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidLockArgumentError('signal', signal, 'an AbortSignal');
  }
  const tickMs = tick instanceof Date ? tick.getTime() : tick;
  if (tickMs !== undefined && !Number.isSafeInteger(tickMs)) {
    throw new InvalidLockArgumentError('tick', tick, 'a Date or an integer number of ms since the epoch');
  }
  return { minHoldMs, waitMs, retryDelayMs, maxRetryDelayMs, tick: tickMs, fencing, autoExtend, lockContext, signal };
}

/** The state hash of a lock: its fencing counter and last tick, in the lock's hash slot. */
function stateKeyOf(lockKey: string): string {
  return `${lockKey}:state`;
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
