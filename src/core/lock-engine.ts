import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { InvalidLockArgumentError } from './errors';
import { type DistributedLockOptions, type ResolvedLockOptions, resolveLockOptions } from './lock-options';
import { ConnectionMonitor } from './redis/connection-monitor';
import { EXTEND_IF_OWNER, LOCK_SCRIPTS, RELEASE_IF_OWNER } from './redis/lock-scripts';
import { createRedisClient } from './redis/redis-client.factory';
import { expectations } from './validation';

/** What `withLock` reports: whether `fn` ran, and its result when it did. */
export type LockedRun<T> = { ran: true; result: T } | { ran: false };

/** A lock this instance took, as it knows it locally. */
interface HeldLock {
  readonly token: string;
  /** Local estimate of when Redis drops the key; past it, the key may belong to someone else. */
  expiresAt: number;
}

/**
 * Mutual exclusion across processes on one Redis, with no framework attached.
 *
 * A lock is the key `<keyPrefix>lock:<key>` holding a random token, set with `SET NX PX`; only
 * the holder of the token can release or extend it. Locks are not reentrant: asking again for a
 * key this instance already holds returns `false`.
 *
 * @example
 * const locks = new LockEngine({ url: 'redis://localhost:6379' });
 * const outcome = await locks.withLock('reports:nightly', 60_000, () => buildReport());
 * if (!outcome.ran) console.log('another process is building it');
 */
export class LockEngine {
  /** The ioredis client in use: the one given as `client`, or the one the engine opened. */
  readonly client: Redis;
  protected readonly options: ResolvedLockOptions;
  private readonly ownsClient: boolean;
  private readonly monitor: ConnectionMonitor;
  private readonly held = new Map<string, HeldLock>();
  private closed = false;

  constructor(options: DistributedLockOptions = {}) {
    this.options = resolveLockOptions(options);
    this.ownsClient = this.options.client === undefined;
    this.client = this.options.client ?? createRedisClient(this.options.connection!);
    const whileDown = this.options.failMode === 'open' ? 'guarded jobs run without a lock' : 'guarded jobs are skipped';
    this.monitor = new ConnectionMonitor(
      this.client,
      this.options.logger,
      this.options.redisLabel,
      whileDown,
      this.ownsClient,
    );
    this.client.on('ready', this.loadScripts);
    if (this.client.status === 'ready') this.loadScripts();
  }

  /** True while the Redis connection is up and ready for commands. */
  isConnected(): boolean {
    return this.monitor.isReady;
  }

  /** The Redis key a lock name is stored under: `<keyPrefix>lock:<key>`. */
  storedKey(key: string): string {
    return `${this.options.keyPrefix}lock:${key}`;
  }

  /**
   * Takes the lock `key` for `ttlMs` unless someone holds it. Resolves `true` when this instance
   * now holds it, `false` when another holder (or this instance, already) has it. When Redis
   * cannot answer within `acquireTimeoutMs`, the fail mode decides: `open` → `true`, `closed` → `false`.
   */
  async acquireLock(key: string, ttlMs: number): Promise<boolean> {
    assertLockArguments(key, ttlMs);
    return (await this.acquire(this.storedKey(key), ttlMs)) !== undefined;
  }

  /**
   * Releases `key` if this instance holds it, with a compare-and-delete on its token, so a lock
   * that expired and was taken by another holder is left alone. Releasing a key this instance does
   * not hold does nothing. Never rejects: if Redis is down, the lock expires by its TTL.
   */
  async releaseLock(key: string): Promise<void> {
    assertKey(key);
    const storedKey = this.storedKey(key);
    const lock = this.held.get(storedKey);
    if (lock) await this.release(storedKey, lock.token);
  }

  /**
   * Sets the TTL of a lock this instance holds to `ttlMs` from now. Resolves `false` when the lock
   * is no longer ours (expired, or taken over) or Redis cannot answer in time.
   */
  async extendLock(key: string, ttlMs: number): Promise<boolean> {
    assertLockArguments(key, ttlMs);
    const storedKey = this.storedKey(key);
    const lock = this.held.get(storedKey);
    if (!lock) return false;
    const reply = await this.monitor.call(
      () => EXTEND_IF_OWNER.run(this.client, [storedKey], [lock.token, ttlMs]),
      this.options.acquireTimeoutMs,
    );
    if (!reply.ok || reply.value !== 1) return false;
    lock.expiresAt = Date.now() + ttlMs;
    return true;
  }

  /** True while this instance holds `key` by its own reckoning (taken, not released, TTL not passed). */
  holdsLock(key: string): boolean {
    assertKey(key);
    const lock = this.held.get(this.storedKey(key));
    return lock !== undefined && lock.expiresAt > Date.now();
  }

  /**
   * Runs `fn` only if the lock is acquired and releases it afterwards, also when `fn` throws (the
   * error propagates). The lock cannot leak past `fn`.
   *
   * @example
   * const outcome = await lockService.withLock('invoices:send', 30_000, () => this.sendInvoices());
   * if (outcome.ran) console.log('sent', outcome.result);
   */
  async withLock<T>(key: string, ttlMs: number, fn: () => T | Promise<T>): Promise<LockedRun<Awaited<T>>> {
    assertLockArguments(key, ttlMs);
    const storedKey = this.storedKey(key);
    const token = await this.acquire(storedKey, ttlMs);
    if (token === undefined) return { ran: false };
    try {
      return { ran: true, result: await fn() };
    } finally {
      await this.release(storedKey, token);
    }
  }

  /**
   * Runs a guarded job (what `@DistributedLock` calls): `fn` when the lock is taken, nothing
   * (resolving `undefined`, logged at debug level) when it is held elsewhere.
   */
  async runJob<T>(
    jobName: string,
    key: string,
    ttlMs: number,
    fn: () => T | Promise<T>,
  ): Promise<Awaited<T> | undefined> {
    const outcome = await this.withLock(key, ttlMs, fn);
    if (outcome.ran) return outcome.result;
    this.options.logger.debug?.(`Skipped ${jobName}: lock "${key}" is held elsewhere.`);
    return undefined;
  }

  /**
   * Waits up to `timeoutMs` (default `acquireTimeoutMs`) for the connection. Resolves whether it is up;
   * never rejects, so a replica can start while Redis is down.
   */
  waitUntilConnected(timeoutMs = this.options.acquireTimeoutMs): Promise<boolean> {
    return this.monitor.waitForReady(timeoutMs);
  }

  /**
   * Releases every lock this instance holds and closes the connection it opened (a client passed
   * as `client` stays open). Later acquisitions resolve `false`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.held].map(([storedKey, lock]) => this.release(storedKey, lock.token)));
    this.client.off('ready', this.loadScripts);
    this.monitor.detach();
    if (!this.ownsClient) return;
    if (this.client.status === 'ready') {
      await this.monitor.call(() => this.client.quit(), this.options.acquireTimeoutMs);
    }
    this.client.disconnect();
  }

  /** Takes the lock and resolves its token, or undefined when not taken. */
  private async acquire(storedKey: string, ttlMs: number): Promise<string | undefined> {
    if (this.closed) return undefined;
    const mine = this.held.get(storedKey);
    if (mine && mine.expiresAt > Date.now()) return undefined;
    const token = randomBytes(16).toString('base64url'); // 128 random bits: unguessable by other holders
    // Recorded before the round trip, so a concurrent call in this instance sees the key as taken.
    this.held.set(storedKey, { token, expiresAt: Date.now() + ttlMs });
    const reply = await this.monitor.call(
      () => this.client.set(storedKey, token, 'PX', ttlMs, 'NX'),
      this.options.acquireTimeoutMs,
    );
    if (reply.ok && reply.value === 'OK') return token;
    if (!reply.ok && this.options.failMode === 'open') {
      // Kept as held: if the SET lands after all, the release deletes it by its token.
      return token;
    }
    this.forget(storedKey, token);
    // A SET that lands after the deadline would hold a lock no one uses until its TTL runs out.
    if (!reply.ok) {
      reply.late?.then(
        (value) => {
          if (value === 'OK') void this.release(storedKey, token);
        },
        () => undefined,
      );
    }
    return undefined;
  }

  private async release(storedKey: string, token: string): Promise<void> {
    this.forget(storedKey, token);
    const reply = await this.monitor.call(
      () => RELEASE_IF_OWNER.run(this.client, [storedKey], [token]),
      this.options.acquireTimeoutMs,
    );
    if (reply.ok && reply.value === 0) {
      this.options.logger.debug?.(`Lock ${storedKey} had expired before its release; it was not deleted.`);
    }
  }

  private forget(storedKey: string, token: string): void {
    if (this.held.get(storedKey)?.token === token) this.held.delete(storedKey);
  }

  private readonly loadScripts = (): void => {
    for (const script of LOCK_SCRIPTS) script.load(this.client).catch(() => undefined);
  };
}

/** Validates a lock name and TTL, throwing a `TypeError` that names the bad value. */
export function assertLockArguments(key: unknown, ttlMs: unknown): void {
  assertKey(key);
  if (!expectations.positiveMs.test(ttlMs)) {
    throw new InvalidLockArgumentError('ttlMs', ttlMs, expectations.positiveMs.expected);
  }
}

function assertKey(key: unknown): asserts key is string {
  if (!expectations.nonEmptyString.test(key)) {
    throw new InvalidLockArgumentError('key', key, expectations.nonEmptyString.expected);
  }
}
