import { monotonicNow } from '../clock';
import type { LockLostError } from '../errors';
import type { LockEvents } from '../events/lock-events';
import type { Occurrence } from '../jobs/job-definition';
import type { AcquireReply, LockRequest, LockStore, OwnerReply, RunHistoryWrite } from '../lock-store';
import type { EngineOptions } from '../options/resolve-options';
import { DeadlineQueue } from '../redis/connection/deadline-queue';
import type { LedgerStatus } from '../policies/ledger';
import type { LockRegistry } from '../runs/lock-registry';
import { backoffDelay, sleep } from '../waits';
import type { AcquireSettings } from './acquire-options';
import { type Attempt, isLock, type SkipReason } from './attempt';
import { ClockSkewWarning } from './clock-skew-warning';
import { LockHandle, type LockIssuer } from './lock-handle';
import { lockRequest } from './lock-request';

const RESOLVED: Promise<void> = Promise.resolve();
const same = <T>(value: T): T => value;

/**
 * Takes, extends and releases locks in a store, keeping what this instance holds in its registry.
 * A lock `name` is the key `<keyPrefix>lock:{<name>}` (see `keys.ts`).
 */
export class LockAcquirer implements LockIssuer {
  /** Set when closing starts: no acquisition is granted after that. */
  private closed = false;
  /** Wakes retry loops waiting between attempts when closing starts. */
  private readonly closeWaits = new AbortController();
  private readonly clockSkew: ClockSkewWarning;
  /** The jobs already warned about a TTL shorter than their run. */
  private readonly warnedTtl = new Set<string>();
  private readonly failOpen: boolean;
  /** The store's `ttlClock`: every handle measures its TTL on it. */
  private readonly clock: () => number;
  /** Renewals expire in due order with the runs' own timers, not after pending I/O. */
  readonly renewals = new DeadlineQueue(false);

  constructor(
    private readonly options: EngineOptions,
    private readonly store: LockStore,
    private readonly registry: LockRegistry,
    private readonly events: LockEvents,
  ) {
    this.failOpen = options.failMode === 'open';
    this.clockSkew = new ClockSkewWarning(options.logger);
    this.clock = store.ttlClock;
  }

  /** No acquisition is granted from now on; one in flight is undone when its reply comes. */
  stopGranting(): void {
    this.closed = true;
    this.closeWaits.abort();
  }

  /** One attempt, or retries until `waitMs` has passed while the lock is held elsewhere. */
  acquire(name: string, ttlMs: number, settings: AcquireSettings, occurrence: Occurrence): Promise<Attempt> {
    return this.acquireThen(name, ttlMs, settings, occurrence, same);
  }

  /**
   * `acquire`, handing the outcome to `then`. A single attempt calls `then` as soon as the store
   * answers: a store that answers at once (the in-memory one) runs it in the caller's turn.
   */
  acquireThen<R>(
    name: string,
    ttlMs: number,
    settings: AcquireSettings,
    occurrence: Occurrence,
    then: (attempt: Attempt) => R,
  ): Promise<R> {
    if (settings.waitMs > 0 || settings.signal) {
      return this.acquireWithRetries(name, ttlMs, settings, occurrence).then(then);
    }
    return this.attempt(name, ttlMs, settings, occurrence, (attempt) => then(this.handOver(attempt, settings)));
  }

  private async acquireWithRetries(
    name: string,
    ttlMs: number,
    settings: AcquireSettings,
    occurrence: Occurrence,
  ): Promise<Attempt> {
    const { signal } = settings;
    const deadline = monotonicNow() + settings.waitMs;
    for (let retry = 0; ; retry++) {
      signal?.throwIfAborted();
      const attempt = await this.attempt(name, ttlMs, settings, occurrence, same);
      if (isLock(attempt)) {
        if (signal?.aborted) {
          await attempt.release();
          signal.throwIfAborted();
        }
        return this.handOver(attempt, settings);
      }
      const remainingMs = deadline - monotonicNow();
      if (attempt !== 'held' || remainingMs <= 0) return attempt;
      const backoffMs = backoffDelay(retry, settings.retryDelayMs, settings.maxRetryDelayMs);
      await sleep(Math.min(remainingMs, backoffMs), { cancelOn: signal, wakeOn: this.closeWaits.signal });
    }
  }

  private handOver(attempt: Attempt, settings: AcquireSettings): Attempt {
    if (isLock(attempt) && settings.autoExtend) {
      attempt.keepAlive();
      this.registry.hold(attempt);
    }
    return attempt;
  }

  async extendHeld(lock: LockHandle, ttlMs: number): Promise<'extended' | 'lost' | 'unknown'> {
    const reply = await this.store.extend(lock.storedKey, lock.token, ttlMs);
    if (reply !== 'done') return reply === 'not-owner' ? 'lost' : 'unknown';
    if (this.events.active) {
      this.events.emit({ type: 'extended', key: lock.key, job: lock.job, tick: lock.tick, ttlMs });
    }
    return 'extended';
  }

  /** Releases `lock` if not released yet; with `record`, appends the run's record in the same call. */
  releaseHeld(lock: LockHandle, record?: RunHistoryWrite): Promise<void> {
    this.registry.letGo(lock);
    if (!lock.markReleased()) return record ? this.recordRun(record) : RESOLVED;
    const holdMs = lock.minHoldMs === 0 ? 0 : Math.max(0, Math.ceil(lock.minHoldMs - lock.elapsedMs()));
    this.registry.callStarted();
    const released = (reply: OwnerReply): void => {
      this.registry.callEnded();
      if (reply !== 'not-owner' || lock.withoutRedis) return;
      if (lock.job !== undefined && !lock.extendsItself) this.warnTtlShorterThanRun(lock.job, lock.ttlMs);
      else this.options.logger.debug?.(`Lock ${lock.storedKey} had expired before its release; it was not deleted.`);
    };
    return this.store.release(lock.storedKey, lock.token, holdMs, released, record);
  }

  /**
   * A job's run outlived its lock, which nothing extended: another replica could start the job
   * meanwhile. Said once per job, as a warning: it is a setting to change, not an outage.
   */
  private warnTtlShorterThanRun(job: string, ttlMs: number): void {
    if (this.warnedTtl.has(job)) return;
    this.warnedTtl.add(job);
    this.options.logger.warn(
      `${job} ran longer than its lock's TTL (ttlMs ${ttlMs}) with autoExtend: false: the lock expired before the ` +
        'run ended, so another replica could start the job meanwhile. Raise ttlMs above its longest run, or let ' +
        'the lock be extended while it runs (autoExtend: true, the default).',
    );
  }

  /** Writes how the attempt `lock` claimed ended to its job's ledger (a job with a policy). */
  settleClaim(lock: LockHandle, status: LedgerStatus): Promise<void> {
    const { claim, tick } = lock;
    if (!claim || tick === undefined) return RESOLVED;
    const { occurrencesKey, attemptsKey, member, attempt, trigger, keepMs } = claim;
    this.registry.callStarted();
    return this.store
      .settleOccurrence({ occurrencesKey, attemptsKey, member, tick, attempt, status, trigger, keepMs })
      .then(() => this.registry.callEnded());
  }

  /** Appends a run's record to its history, without touching the lock. */
  recordRun(record: RunHistoryWrite): Promise<void> {
    this.registry.callStarted();
    return this.store.recordRun(record).then(() => this.registry.callEnded());
  }

  lockLost(lock: LockHandle, error: LockLostError): void {
    this.options.logger.error(error.message);
    if (this.events.active) this.events.emit({ type: 'lost', key: lock.key, job: lock.job, tick: lock.tick, error });
  }

  /**
   * One acquisition round trip, deciding by the fail mode when Redis cannot answer in time. The
   * store hands its reply to `then`, so no promise is added between Redis and the caller.
   */
  attempt<R>(
    name: string,
    ttlMs: number,
    settings: AcquireSettings,
    occurrence: Occurrence,
    then: (attempt: Attempt) => R,
  ): Promise<R> {
    if (this.closed) return Promise.resolve(then(this.reported('closed', name, occurrence)));
    if (this.registry.isBusy(name)) return Promise.resolve(then(this.reported('held', name, occurrence)));
    const request = lockRequest(this.options, name, ttlMs, settings.fencing ?? this.options.fencing, occurrence);
    const requestedAt = this.clock();
    const previous = this.registry.reserve(name);
    this.registry.callStarted();
    // Under fail-open the handle keeps the token, and its release deletes a late acquisition.
    return this.store.acquire(request, !this.failOpen, (reply) => {
      this.registry.callEnded();
      let attempt = this.decide(name, request, reply, settings.minHoldMs, requestedAt, occurrence);
      if (isLock(attempt) && this.closed) attempt = this.undo(attempt, request);
      this.registry.settle(name, isLock(attempt) ? attempt : undefined, previous);
      if (this.events.active) this.report(attempt, name, occurrence, requestedAt);
      return then(attempt);
    });
  }

  /** `reason`, reported to the listeners first. */
  private reported(reason: SkipReason, name: string, occurrence: Occurrence): SkipReason {
    if (this.events.active) this.report(reason, name, occurrence, this.clock());
    return reason;
  }

  private report(attempt: Attempt, key: string, occurrence: Occurrence, requestedAt: number): void {
    const { job, tick } = occurrence;
    const attribution = occurrence.ledger ? { trigger: occurrence.trigger, attempt: occurrence.attempt } : undefined;
    if (!isLock(attempt)) {
      this.events.emit({ type: 'skipped', key, job, tick, reason: attempt, ...attribution });
      return;
    }
    const { fencingToken, withoutRedis } = attempt;
    const latencyMs = this.clock() - requestedAt;
    this.events.emit({ type: 'acquired', key, job, tick, fencingToken, withoutRedis, latencyMs, ...attribution });
  }

  /** An acquisition granted after closing started: give it back at once, tick included. */
  private undo(lock: LockHandle, request: LockRequest): 'closed' {
    lock.markReleased();
    if (!lock.withoutRedis) {
      this.registry.callStarted();
      void this.store.cancel(request).then(() => this.registry.callEnded());
    }
    return 'closed';
  }

  private decide(
    name: string,
    request: LockRequest,
    reply: AcquireReply,
    minHoldMs: number,
    requestedAt: number,
    { job, tracked, trigger, attempt }: Occurrence,
  ): Attempt {
    switch (reply.kind) {
      case 'held':
      case 'buffered':
      case 'tick-served':
      case 'paused':
      case 'refused':
        return reply.kind;
      case 'clock-skew':
        this.clockSkew.refused(name, request.tick!, reply.offsetMs);
        return 'clock-skew';
      case 'unavailable':
        if (!this.failOpen) return 'unavailable';
        // A Redis never reached is more likely a wrong address than an outage: no unlocked run.
        if (this.options.failClosedUntilConnected && !this.store.hasConnected()) return 'unavailable';
    }
    // One object of the final shape: copying a half-built one cost more than the rest of the call.
    return new LockHandle(this, {
      key: name,
      storedKey: request.lockKey,
      token: request.token,
      ttlMs: request.ttlMs,
      minHoldMs,
      tick: request.tick,
      job,
      tracked,
      trigger,
      attempt,
      claim: request.claim,
      requestedAt,
      clock: this.clock,
      driftMs: this.store.driftMs(request.ttlMs),
      fencingToken: reply.kind === 'acquired' ? reply.fencingToken : undefined,
      withoutRedis: reply.kind === 'unavailable',
    });
  }
}
