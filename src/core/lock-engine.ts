import type { Cluster, Redis } from 'ioredis';
import { assembleEngine, type EngineParts } from './engine-parts';
import { DistributedLockError, InvalidLockArgumentError } from './errors';
import type { LockEventListener } from './events/lock-events';
import type { FleetInspector, OverdueJob } from './fleet/fleet-inspector';
import type { FleetNotices } from './fleet/fleet-operations';
import type { JobDeclaration } from './fleet/fleet-records';
import { JobDefinition, NO_OCCURRENCE, plainOccurrence } from './jobs/job-definition';
import { lockKeyOf, stateKeyOf } from './keys';
import type { LockStore, ServerProbe } from './lock-store';
import { ACQUIRE_DEFAULTS, type AcquireOptions, assertKey, assertLockArguments } from './locks/acquire-options';
import { checkAcquireOptions, WITH_LOCK_DEFAULTS } from './locks/acquire-options';
import { isLock } from './locks/attempt';
import type { LockHandle } from './locks/lock-handle';
import type { DistributedLockOptions } from './options/lock-options';
import { RedisStore } from './redis/redis-store';
import { configurationError } from './redis/reply-errors';
import { drainRuns } from './runs/drain';
import type { LockedRun } from './runs/guarded-runs';

export type { SkipReason } from './locks/attempt';
export type { LockedRun } from './runs/guarded-runs';

/**
 * Mutual exclusion across processes on one Redis, with no framework attached: a thin facade over
 * the acquirer, the guarded runs and the fleet records (see docs/architecture.md). Only the holder
 * of a lock's token can release or extend it; locks are not reentrant.
 *
 * @example
 * const locks = new LockEngine({ url: 'redis://localhost:6379' });
 * const outcome = await locks.withLock('reports:nightly', 60_000, () => buildReport());
 * if (!outcome.ran) console.log('not run:', outcome.reason);
 * await locks.close(); // waits for runs in progress, then disconnects
 */
export class LockEngine {
  private readonly parts: EngineParts;
  private draining: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  /** @param store Where locks live instead of Redis (the testing module's in-memory store). */
  constructor(options: DistributedLockOptions = {}, store?: LockStore) {
    this.parts = assembleEngine(options, store);
  }

  /**
   * Calls `listener` with every `LockEvent` of this engine (acquired, skipped, ran, extended, lost,
   * outages, drained, paused…) and returns the function that stops it; no listener, no event built.
   *
   * @example
   * const stop = locks.onEvent((event) => {
   *   if (event.type === 'skipped') console.log(`${event.job ?? event.key}: ${event.reason}`);
   * });
   */
  onEvent(listener: LockEventListener): () => void {
    if (typeof listener !== 'function') throw new InvalidLockArgumentError('listener', listener, 'a function');
    return this.parts.events.subscribe(listener);
  }

  /**
   * The ioredis client in use (the one given as `client`, or the one opened; a quorum has none).
   * Once read, the engine stops coalescing its own writes on it, so your commands never wait for it.
   */
  get client(): Redis | Cluster {
    if (!(this.parts.store instanceof RedisStore)) {
      throw new DistributedLockError(
        `There is no single Redis client to hand out: locks live in ${this.parts.store.label}.`,
      );
    }
    return this.parts.store.handOutClient();
  }

  /**
   * What the fleet keeps in Redis, read and steered from code as the CLI does (`jobs`, `locks`,
   * `runs`, `missed`, `overdue`, `release`, `pause`, `resume`, `forget`), on the engine's connection
   * (a quorum has none). Each call rejects after 5 × `acquireTimeoutMs` (at least 1 s) unanswered.
   *
   * @example
   * await lockService.fleet.pause('ReportJobs.nightly', 'ops: database maintenance');
   */
  get fleet(): FleetInspector {
    return this.parts.operations.fleet();
  }

  /**
   * The `@Cron` jobs whose latest occurrence at least `graceMs` old ran nowhere (see
   * `fleet.overdue`), read within `acquireTimeoutMs`: what a health check reports. `undefined`
   * where the fleet keeps no job records (`operations: false`, a quorum, the testing store);
   * rejects when Redis does not answer in time.
   */
  overdueJobs(options: { graceMs: number }): Promise<OverdueJob[] | undefined> {
    return this.parts.operations.overdue(options);
  }

  /** Paused jobs and schedule drift (`fleet.paused`, `fleet.drift`) within `acquireTimeoutMs`; `undefined` as above. */
  fleetNotices(): Promise<FleetNotices | undefined> {
    return this.parts.operations.notices();
  }

  /** True while Redis is up and ready for commands (for a quorum: a majority of its nodes). */
  isConnected(): boolean {
    return this.parts.store.isReady();
  }

  /**
   * The Redis keys of lock `key`: the lock itself and its state hash (fencing counter, latest
   * ticks). Both carry the hash tag `{<key>}`, so they share a Redis Cluster slot.
   */
  keysFor(key: string): { lock: string; state: string } {
    const lock = lockKeyOf(this.parts.options.keyPrefix, key);
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
    return this.parts.acquirer.attempt(key, ttlMs, ACQUIRE_DEFAULTS, NO_OCCURRENCE, isLock);
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
    const lock = this.parts.registry.named(key);
    return lock ? this.parts.acquirer.releaseHeld(lock) : Promise.resolve();
  }

  /**
   * Sets the TTL of a lock this instance holds to `ttlMs` from now. Resolves `false` when the lock
   * is no longer ours (expired, or taken over) or Redis cannot answer in time.
   */
  async extendLock(key: string, ttlMs: number): Promise<boolean> {
    assertLockArguments(key, ttlMs);
    const lock = this.parts.registry.named(key);
    return lock ? lock.extend(ttlMs) : false;
  }

  /** True while this instance holds `key` by its own reckoning (taken, not released, TTL not passed). */
  holdsLock(key: string): boolean {
    assertKey(key);
    return this.parts.registry.named(key)?.isHeld ?? false;
  }

  /**
   * The fencing token of the lock this instance holds on `key`: a number that grows with every
   * fenced acquisition of the key, so a downstream store can refuse writes carrying an older one.
   * `undefined` when not held, taken without `fencing`, or held without Redis (fail-open).
   */
  fencingToken(key: string): number | undefined {
    assertKey(key);
    const lock = this.parts.registry.named(key);
    return lock?.isHeld ? lock.fencingToken : undefined;
  }

  /**
   * Takes the lock and returns its handle, or `undefined` when it stays held elsewhere until
   * `waitMs` has passed. Retries back off exponentially with jitter; `signal` cancels the wait.
   * A handle with `autoExtend` counts as a run in progress: closing waits for its release.
   *
   * @example
   * const lock = await lockService.acquire('ledger', 10_000, { waitMs: 5_000, signal });
   * if (!lock) return;
   * try { await work(lock.fencingToken); } finally { await lock.release(); }
   */
  async acquire(key: string, ttlMs: number, options?: AcquireOptions): Promise<LockHandle | undefined> {
    assertLockArguments(key, ttlMs);
    const settings = options === undefined ? ACQUIRE_DEFAULTS : checkAcquireOptions(options, false);
    const attempt = await this.parts.acquirer.acquire(key, ttlMs, settings, plainOccurrence(settings.tick));
    return isLock(attempt) ? attempt : undefined;
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
    options?: AcquireOptions,
  ): Promise<LockedRun<Awaited<T>>> {
    assertLockArguments(key, ttlMs);
    const settings = options === undefined ? WITH_LOCK_DEFAULTS : checkAcquireOptions(options, true);
    return this.parts.runs.run(key, ttlMs, fn, settings, plainOccurrence(settings.tick));
  }

  /**
   * Runs a guarded job under the name `jobName`: `fn` when the lock is taken, nothing (resolving
   * `undefined`, logged at `skipLogLevel` with the reason) otherwise. A job's served ticks are kept
   * under its own name, so jobs sharing a lock key do not use up each other's ticks. For a job run
   * often, define it once and call `runDefinedJob`.
   */
  runJob<T>(
    jobName: string,
    key: string,
    ttlMs: number,
    fn: () => T | Promise<T>,
    options: AcquireOptions = {},
  ): Promise<Awaited<T> | undefined> {
    try {
      return this.runDefinedJob(new JobDefinition({ name: jobName, key, ttlMs, options }), fn);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Runs a defined job (what `@DistributedLock` calls): `fn` when the lock is taken, serving the
   * occurrence the job's schedule names now; nothing (resolving `undefined`, logged at
   * `skipLogLevel` with the reason) otherwise. `lockName` is this call's lock name, for a job
   * defined without a fixed `key`.
   *
   * @example
   * const nightly = new JobDefinition({ name: 'reports.nightly', key: 'reports', ttlMs: 60_000 });
   * await locks.runDefinedJob(nightly, () => buildReport());
   */
  runDefinedJob<T>(job: JobDefinition, fn: () => T | Promise<T>, lockName?: string): Promise<Awaited<T> | undefined> {
    return this.parts.jobs.run(job, fn, lockName);
  }

  /**
   * Starts the policies of a defined job (catch-up, retry, recovery: `docs/policies.md`), whose
   * runs call `run`; `@DistributedLock` jobs get theirs at startup. A `JobPolicyError` if one cannot work here.
   */
  startPolicies(job: JobDefinition, run: () => unknown): void {
    this.parts.jobs.adopt(job, run);
  }

  /**
   * Records the guarded jobs this replica runs (name, lock name, TTL, schedule, zone: this
   * process's when none is given) for the operations tools; `@DistributedLock` methods are declared
   * at startup, call it for jobs run with `runJob`. Sent at once when connected, and again after
   * each reconnection; never waits for the connection, never rejects. Nothing with `operations` off.
   *
   * @example
   * await locks.declareJobs([
   *   { name: 'reports', key: 'reports', ttlMs: 60_000, cron: '0 6 * * *', timeZone: null, utcOffset: null },
   * ]);
   */
  declareJobs(jobs: readonly JobDeclaration[]): Promise<void> {
    return this.parts.operations.declare(jobs);
  }

  /** Per server, Redis `TIME` within `acquireTimeoutMs`: the round trip and clock offset, or why not. Never rejects. */
  probe(): Promise<ServerProbe[]> {
    return this.parts.store.probe();
  }

  /** Waits up to `timeoutMs` (default `acquireTimeoutMs`) for the connection: whether it is up. Never rejects. */
  waitUntilConnected(timeoutMs = this.parts.options.acquireTimeoutMs): Promise<boolean> {
    return this.parts.store.waitForReady(timeoutMs);
  }

  /**
   * Throws a `DistributedLockConfigError` naming the setting Redis refused (a password or user, a
   * database, an ACL user without the lock commands); call it after `waitUntilConnected()`.
   */
  throwIfMisconfigured(): void {
    const problem = this.parts.store.configurationProblem();
    if (problem) throw configurationError(problem, this.parts.store.label, this.parts.inUrl);
  }

  /**
   * The first half of closing, which `close()` includes: no acquisition is granted from now on;
   * runs in progress keep their lock, still extended, until they settle or `shutdownTimeoutMs`
   * passes, then their signal aborts and their locks expire by TTL, never deleted (see `runs/drain.ts`).
   * Locks taken without auto-extension (`acquireLock`) keep their TTL. Idempotent.
   */
  drain(): Promise<void> {
    this.parts.jobs.stop();
    return (this.draining ??= drainRuns(this.parts));
  }

  /** Drains, then closes the connection the engine opened (not a `client` given); no timer stays armed. */
  close(): Promise<void> {
    return (this.closing ??= this.drain().then(() => {
      this.parts.telemetry?.close();
      return this.parts.store.close();
    }));
  }
}
