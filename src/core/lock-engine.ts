import type { Cluster, Redis } from 'ioredis';
import {
  type AcquireOptions,
  type AcquireSettings,
  assertKey,
  assertLockArguments,
  checkAcquireOptions,
  NO_OCCURRENCE,
  type Occurrence,
} from './acquire-options';
import { jobTickField, stateKeyOf, TICK_FIELD } from './keys';
import { monotonicNow } from './clock';
import { DistributedLockError, InvalidLockArgumentError, LockLostError } from './errors';
import { type Attempt, isLock, LockAcquirer, type SkipReason } from './lock-acquirer';
import { runWithLock } from './lock-context';
import { type LockEventListener, LockEvents } from './lock-events';
import type { LockHandle } from './lock-handle';
import { type DistributedLockOptions, logInfo, type ResolvedLockOptions, resolveLockOptions } from './lock-options';
import type { FleetInspector, OverdueJob } from './fleet/fleet-inspector';
import { FleetOperations } from './fleet/fleet-operations';
import type { JobDeclaration } from './fleet/fleet-records';
import type { LockStore, ServerProbe } from './lock-store';
import { createLockStore } from './redis/redis-client.factory';
import { RedisStore } from './redis/redis-store';
import { configurationError } from './redis/reply-errors';
import { RunDrain } from './run-drain';
import { createLockTelemetry, type LockTelemetry } from './telemetry/open-telemetry';
import { runOutcome, type RunTracer, type TracedRun } from './telemetry/run-tracer';

export type { SkipReason } from './lock-acquirer';

/** What `withLock` reports: whether `fn` ran, and its result when it did, or why it did not. */
export type LockedRun<T> = { ran: true; result: T } | { ran: false; reason: SkipReason };

const NOT_RUN = Object.fromEntries(
  (['held', 'tick-served', 'paused', 'clock-skew', 'refused', 'unavailable', 'closed'] as const).map((reason) => [
    reason,
    Object.freeze({ ran: false, reason }),
  ]),
) as Record<SkipReason, { ran: false; reason: SkipReason }>;

const SKIP_DESCRIPTIONS: Record<SkipReason, string> = {
  held: 'is held elsewhere',
  'tick-served': 'already served this occurrence',
  paused: 'is not taken: the job is paused fleet-wide (resume it to run it again)',
  'clock-skew': 'was asked for an occurrence too far from the Redis clock',
  refused: 'was refused by Redis (see the error logged)',
  unavailable: 'could not be taken: Redis is unavailable (fail-closed)',
  closed: 'is not taken: the application is shutting down',
};

/**
 * Mutual exclusion across processes on one Redis, with no framework attached.
 *
 * A lock `key` is the string `<keyPrefix>lock:{<key>}` holding a unique token, taken with
 * `SET NX PX`. A fenced acquisition, or one serving a scheduled tick, runs the same `SET` inside a
 * Lua call that also keeps the key's fencing counter and latest ticks in the hash
 * `<keyPrefix>lock:{<key>}:state`. Only the holder of the token can release or extend it. Locks
 * are not reentrant: asking again for a key this instance already holds returns `false`.
 *
 * @example
 * const locks = new LockEngine({ url: 'redis://localhost:6379' });
 * const outcome = await locks.withLock('reports:nightly', 60_000, () => buildReport());
 * if (!outcome.ran) console.log('not run:', outcome.reason);
 * await locks.close(); // waits for runs in progress, then disconnects
 */
export class LockEngine {
  protected readonly options: ResolvedLockOptions;
  private readonly store: LockStore;
  private readonly drainer = new RunDrain();
  private readonly locks: LockAcquirer;
  private readonly events: LockEvents;
  /** Job declarations, run records and the fleet's records, for the operators. */
  private readonly operations: FleetOperations;
  /** Runs abandoned at shutdown: recorded then, and not again when they end. */
  private readonly abandoned = new WeakSet<LockHandle>();
  /** Wraps each guarded run (OpenTelemetry spans); unset unless tracing is on. */
  private readonly tracer: RunTracer | undefined;
  /** Metrics and spans through OpenTelemetry, when `openTelemetry` is on. */
  private readonly telemetry: LockTelemetry | undefined;
  private draining: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** What `acquireLock` asks for: one attempt, no minimum hold, the engine's fencing default. */
  private readonly plainSettings: AcquireSettings;

  /** @param store @internal Where locks live instead of Redis (the testing module's in-memory store). */
  constructor(options: DistributedLockOptions = {}, store?: LockStore) {
    this.options = resolveLockOptions(options);
    this.plainSettings = checkAcquireOptions({}, false);
    const whileDown = this.options.failMode === 'open' ? 'guarded jobs run without a lock' : 'guarded jobs are skipped';
    const { target, acquireTimeoutMs: timeoutMs, logger, waitForReplicas, onEvent } = this.options;
    this.events = new LockEvents(logger);
    if (onEvent) this.events.subscribe(onEvent);
    if (this.options.openTelemetry) {
      // Before the store: a missing @opentelemetry/api throws here, with no connection opened yet.
      this.telemetry = createLockTelemetry(this.options.openTelemetry, {
        heldLocks: () => this.locks.heldCount(),
        logger,
      });
      this.events.subscribe(this.telemetry.listener);
      this.tracer = this.telemetry.tracer;
    }
    this.store =
      store ?? createLockStore(target, { timeoutMs, logger, whileDown, waitForReplicas, events: this.events });
    this.locks = new LockAcquirer(this.options, this.store, this.drainer, this.events);
    this.operations = new FleetOperations(this.options, this.store);
  }

  /**
   * Calls `listener` with every `LockEvent` of this engine (acquired, skipped, ran, extended, lost,
   * outages, drained) and returns the function that stops it. With no listener, no event is built.
   *
   * @example
   * const stop = locks.onEvent((event) => {
   *   if (event.type === 'skipped') console.log(`${event.job ?? event.key}: ${event.reason}`);
   * });
   */
  onEvent(listener: LockEventListener): () => void {
    if (typeof listener !== 'function') throw new InvalidLockArgumentError('listener', listener, 'a function');
    return this.events.subscribe(listener);
  }

  /**
   * The ioredis client in use: the one given as `client`, or the one the engine opened (a `Cluster`
   * for `clusterNodes`). A quorum (`nodes`) has one per node and no single client. Once read, the
   * engine stops coalescing its own writes on that connection, so your commands never wait for it.
   */
  get client(): Redis | Cluster {
    if (!(this.store instanceof RedisStore)) {
      throw new DistributedLockError(`There is no single Redis client to hand out: locks live in ${this.store.label}.`);
    }
    return this.store.handOutClient();
  }

  /**
   * What the fleet keeps in Redis, to read and steer from code as the CLI does: the jobs declared
   * (`jobs()`), the locks held and their holders (`locks()`), a job's recent runs (`runs(job)`),
   * the occurrences that ran nowhere (`missed`, `overdue`), `release(name)` by force, and
   * `pause(job, by)` / `resume(job)` fleet-wide, `forget(job)`. It uses the engine's connection (a
   * single Redis, Sentinel or Cluster; a quorum has none). Each call rejects after five times
   * `acquireTimeoutMs` (at least 1 s) without an answer: a query may read many keys, but never hangs.
   *
   * @example
   * await lockService.fleet.pause('ReportJobs.nightly', 'ops: database maintenance');
   */
  get fleet(): FleetInspector {
    return this.operations.fleet();
  }

  /**
   * The `@Cron` jobs whose latest occurrence at least `graceMs` old ran nowhere (see
   * `fleet.overdue`), read within `acquireTimeoutMs`: what a health check reports. `undefined`
   * where the fleet keeps no job records (`operations: false`, a quorum, the testing store);
   * rejects when Redis does not answer in time.
   */
  overdueJobs(options: { graceMs: number }): Promise<OverdueJob[] | undefined> {
    return this.operations.overdue(options);
  }

  /** True while Redis is up and ready for commands (for a quorum: a majority of its nodes). */
  isConnected(): boolean {
    return this.store.isReady();
  }

  /**
   * The Redis keys of lock `key`: the lock itself and its state hash (fencing counter, latest
   * ticks). Both carry the hash tag `{<key>}`, so they share a Redis Cluster slot.
   */
  keysFor(key: string): { lock: string; state: string } {
    const lock = this.locks.lockKeyOf(key);
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
    return this.locks.attempt(key, ttlMs, this.plainSettings, NO_OCCURRENCE, isLock);
  }

  /**
   * Releases `key` if this instance holds it, with a compare-and-delete on its token, so a lock
   * that expired and was taken by another holder is left alone. Releasing a key this instance does
   * not hold does nothing. Never rejects: if Redis is down, the lock expires by its TTL.
   */
  async releaseLock(key: string): Promise<void> {
    assertKey(key);
    const lock = this.locks.lockNamed(key);
    if (lock) await this.locks.releaseHeld(lock);
  }

  /**
   * Sets the TTL of a lock this instance holds to `ttlMs` from now. Resolves `false` when the lock
   * is no longer ours (expired, or taken over) or Redis cannot answer in time.
   */
  async extendLock(key: string, ttlMs: number): Promise<boolean> {
    assertLockArguments(key, ttlMs);
    const lock = this.locks.lockNamed(key);
    return lock ? lock.extend(ttlMs) : false;
  }

  /** True while this instance holds `key` by its own reckoning (taken, not released, TTL not passed). */
  holdsLock(key: string): boolean {
    assertKey(key);
    return this.locks.lockNamed(key)?.isHeld ?? false;
  }

  /**
   * The fencing token of the lock this instance holds on `key`: a number that grows with every
   * fenced acquisition of the key, so a downstream store can refuse writes carrying an older one.
   * `undefined` when not held, taken without `fencing`, or held without Redis (fail-open).
   */
  fencingToken(key: string): number | undefined {
    assertKey(key);
    const lock = this.locks.lockNamed(key);
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
  async acquire(key: string, ttlMs: number, options: AcquireOptions = {}): Promise<LockHandle | undefined> {
    assertLockArguments(key, ttlMs);
    const settings = checkAcquireOptions(options, false);
    const attempt = await this.locks.acquire(key, ttlMs, settings, occurrenceOf(settings, TICK_FIELD));
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
    options: AcquireOptions = {},
  ): Promise<LockedRun<Awaited<T>>> {
    assertLockArguments(key, ttlMs);
    const settings = checkAcquireOptions(options, true);
    return this.runLocked(key, ttlMs, fn, settings, occurrenceOf(settings, TICK_FIELD));
  }

  /**
   * Runs a guarded job (what `@DistributedLock` calls): `fn` when the lock is taken, nothing
   * (resolving `undefined`, logged at `skipLogLevel` with the reason) otherwise. A job's served ticks
   * are kept under its own name, so jobs sharing a lock key do not use up each other's ticks.
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
    return this.runGuarded(jobName, key, ttlMs, fn, settings, occurrenceOf(settings, jobTickField(jobName), jobName));
  }

  /**
   * @internal `runJob` with options checked beforehand, as the decorator does once per method, and
   * the occurrence it serves (its tick field is `jobTickField(jobName)`).
   */
  async runGuarded<T>(
    jobName: string,
    key: string,
    ttlMs: number,
    fn: () => T | Promise<T>,
    settings: AcquireSettings,
    occurrence: Occurrence,
  ): Promise<Awaited<T> | undefined> {
    const outcome = await this.runLocked(key, ttlMs, fn, settings, occurrence);
    if (outcome.ran) return outcome.result;
    const { logger, skipLogLevel } = this.options;
    if (skipLogLevel === false) return undefined;
    // A logger without the level asked for (console has no verbose) falls back to debug.
    (logger[skipLogLevel] ?? logger.debug)?.call(
      logger,
      `Skipped ${jobName}: lock "${key}" ${SKIP_DESCRIPTIONS[outcome.reason]}.`,
    );
    return undefined;
  }

  /**
   * Records, in Redis, the guarded jobs this replica runs (name, lock name, TTL, schedule), for
   * the operations tools (`status`, `missed`, `pause`); a schedule given without a zone is recorded
   * with this process's zone, the one it is read in. `DistributedLockService` declares every
   * `@DistributedLock` method at startup; call it for jobs run with `runJob`. Sent at once when
   * connected, else as soon as the connection is ready, and again after each reconnection (a
   * restarted Redis may have lost it); it never waits for the connection, and never rejects.
   * Does nothing when `operations` is off.
   *
   * @example
   * await locks.declareJobs([
   *   { name: 'reports', key: 'reports', ttlMs: 60_000, cron: '0 6 * * *', timeZone: null, utcOffset: null },
   * ]);
   */
  declareJobs(jobs: readonly JobDeclaration[]): Promise<void> {
    return this.operations.declare(jobs);
  }

  /**
   * Asks Redis for its time (`TIME`, within `acquireTimeoutMs`): per server, the round trip and how
   * far this process's clock is from Redis's, or why it did not answer. What a health check reports;
   * never rejects.
   */
  probe(): Promise<ServerProbe[]> {
    return this.store.probe();
  }

  /**
   * Waits up to `timeoutMs` (default `acquireTimeoutMs`) for the connection. Resolves whether it is up;
   * never rejects, so a replica can start while Redis is down. After `close()`: false.
   */
  waitUntilConnected(timeoutMs = this.options.acquireTimeoutMs): Promise<boolean> {
    return this.store.waitForReady(timeoutMs);
  }

  /**
   * Throws a `DistributedLockConfigError` naming the setting when Redis refused this configuration
   * (a password or user it rejects, a database it does not have, an ACL user without the lock
   * commands). `DistributedLockService` calls it at bootstrap, after the first connection wait.
   *
   * @example
   * await locks.waitUntilConnected();
   * locks.throwIfMisconfigured();
   */
  throwIfMisconfigured(): void {
    const problem = this.store.configurationProblem();
    if (problem) throw configurationError(problem, this.store.label);
  }

  /**
   * The first half of closing, which `close()` includes: no acquisition is granted from now on
   * (one in flight is undone when its reply comes); runs in progress keep their lock, still
   * extended, until they settle or `shutdownTimeoutMs` passes. Runs still going then have their
   * signal aborted with a `LockLostError` and their locks left to expire by TTL: a lock whose
   * holder may still be working is never deleted. Locks taken without auto-extension
   * (`acquireLock`) keep their TTL. Idempotent.
   */
  drain(): Promise<void> {
    return (this.draining ??= this.drainRuns());
  }

  /**
   * Drains (see `drain`), then closes the connection the engine opened (a client passed as
   * `client` stays open). Later acquisitions resolve `false`; no timer of the engine stays armed.
   */
  close(): Promise<void> {
    return (this.closing ??= this.drain().then(() => {
      this.telemetry?.close();
      return this.store.close();
    }));
  }

  private async drainRuns(): Promise<void> {
    this.locks.stopGranting();
    const started = monotonicNow();
    const waitedFor = this.drainer.runningKeys();
    const left = await this.drainer.untilIdle(this.options.shutdownTimeoutMs);
    const ms = Math.round(monotonicNow() - started);
    const { shutdownTimeoutMs, logger } = this.options;
    const reason = `the application shut down while it was still running (shutdownTimeoutMs ${shutdownTimeoutMs}); it is no longer extended and expires by its TTL`;
    for (const lock of left) {
      lock.abandon(reason);
      this.abandoned.add(lock);
      if (this.events.active) {
        const error = new LockLostError(lock.key, reason);
        this.events.emit({ type: 'lost', key: lock.key, job: lock.job, tick: lock.tick, error });
      }
      if (this.operations.records(lock)) {
        const runningMs = monotonicNow() - lock.requestedAt;
        void this.locks.recordRun(this.operations.runRecord(lock, 'abandoned', runningMs, reason));
      }
    }
    const finished = waitedFor.length - left.length;
    if (this.events.active) {
      this.events.emit({ type: 'drained', finished, abandoned: left.map((lock) => lock.key), waitedMs: ms });
    }
    if (finished > 0) logInfo(logger, `Shutdown waited ${ms} ms for ${finished} run(s) to finish.`);
    if (left.length > 0) {
      logger.warn(
        `Shutdown left ${left.length} run(s) still going after ${ms} ms: ${left.map((lock) => `"${lock.key}"`).join(', ')}. ` +
          'Their signals are aborted; their locks are no longer extended and expire by their TTL.',
      );
    }
  }

  /**
   * Runs `fn` holding the lock, and releases it however `fn` ends. A lock decided in the caller's
   * turn (the in-memory store, or a refusal known at once) runs `fn` in that same turn, and a
   * synchronous `fn` is released in it too: a timer callback under fake timers runs and lets go of
   * its job before the next timer fires. A lock decided later runs `fn` in the caller's async
   * context (AsyncLocalStorage, spans), never in that of the reply or deadline that decided it.
   */
  private async runLocked<T>(
    key: string,
    ttlMs: number,
    fn: (lock: LockHandle) => T | Promise<T>,
    settings: AcquireSettings,
    occurrence: Occurrence,
  ): Promise<LockedRun<Awaited<T>>> {
    let decidedAtOnce: Attempt | undefined;
    let calling = true;
    const decided = this.locks.acquireThen(key, ttlMs, settings, occurrence, (attempt) => {
      if (calling) decidedAtOnce = attempt;
      return attempt;
    });
    calling = false;
    if (decidedAtOnce !== undefined) return this.runHolding(decidedAtOnce, fn, settings);
    // A promise reaction runs in the context where it was registered: this caller's.
    return decided.then((attempt) => this.runHolding(attempt, fn, settings));
  }

  private runHolding<T>(
    lock: Attempt,
    fn: (lock: LockHandle) => T | Promise<T>,
    settings: AcquireSettings,
  ): LockedRun<Awaited<T>> | Promise<LockedRun<Awaited<T>>> {
    if (!isLock(lock)) return NOT_RUN[lock];
    this.drainer.hold(lock);
    const run: RunInProgress = { lock, startedAt: monotonicNow(), span: undefined };
    let result: T | Promise<T>;
    try {
      if (this.tracer) {
        const traced = this.tracer.trace(lock, () => runWithLock(lock, fn, settings.lockContext));
        run.span = traced;
        result = traced.result;
      } else {
        result = runWithLock(lock, fn, settings.lockContext);
      }
    } catch (error) {
      return this.endRun(run, error, true).then(() => Promise.reject(error));
    }
    if (!isThenable(result)) {
      return this.endRun(run, undefined, false).then(() => ({ ran: true, result: result as Awaited<T> }));
    }
    return Promise.resolve(result).then(
      (value) => this.endRun(run, undefined, false).then(() => ({ ran: true as const, result: value })),
      (error: unknown) => this.endRun(run, error, true).then(() => Promise.reject(error)),
    );
  }

  /**
   * Reports the run and releases its lock, with the run's record for a job when operations are on.
   * The release's effect on an in-memory store is immediate.
   */
  private endRun({ lock, startedAt, span }: RunInProgress, error: unknown, failed: boolean): Promise<void> {
    // A run abandoned at shutdown was recorded then; it is not recorded again when it ends.
    const recorded = this.operations.records(lock) && !this.abandoned.has(lock);
    if (!this.events.active && !span && !recorded) return this.locks.releaseHeld(lock);
    const outcome = runOutcome(lock, failed);
    const durationMs = monotonicNow() - startedAt;
    span?.end(outcome, error);
    if (this.events.active) {
      const { key, job, tick, fencingToken, withoutRedis } = lock;
      this.events.emit({ type: 'ran', key, job, tick, outcome, durationMs, fencingToken, withoutRedis, error });
    }
    const record = recorded ? this.operations.runRecord(lock, outcome, durationMs, error) : undefined;
    return this.locks.releaseHeld(lock, record);
  }
}

/** A guarded run between its start and its release. */
interface RunInProgress {
  readonly lock: LockHandle;
  readonly startedAt: number;
  span: TracedRun<unknown> | undefined;
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function occurrenceOf(settings: AcquireSettings, tickField: string, job?: string): Occurrence {
  if (settings.tick === undefined && job === undefined) return NO_OCCURRENCE;
  return { job, tracked: job !== undefined, tick: settings.tick, tickField, periodMs: 0 };
}
