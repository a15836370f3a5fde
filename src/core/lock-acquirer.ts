import type { AcquireSettings, Occurrence } from './acquire-options';
import { monotonicNow } from './clock';
import type { LockLostError } from './errors';
import type { LockEvents } from './lock-events';
import { LockHandle, type LockIssuer } from './lock-handle';
import type { ResolvedLockOptions } from './lock-options';
import { backoffDelay, sleep } from './waits';
import { createToken, holderToken, lockKeyOf, pausedKeyOf, stateKeyOf } from './keys';
import type { AcquireReply, LockRequest, LockStore, OwnerReply, RunHistoryWrite } from './lock-store';
import type { RunDrain } from './run-drain';

/**
 * Why a lock was not taken: `held` by someone (this instance included); its `tick-served` already;
 * the job `paused` fleet-wide by an operator;
 * `clock-skew`, its tick too far from the Redis clock to judge; `refused` by Redis (settings it
 * rejects, a key of another type: logged as an error); Redis `unavailable` under fail-closed; or
 * the engine `closed` (shutting down).
 */
export type SkipReason = 'held' | 'tick-served' | 'paused' | 'clock-skew' | 'refused' | 'unavailable' | 'closed';

/** What one acquisition round trip came to: the new lock, or why there is none. */
export type Attempt = LockHandle | SkipReason;

/** How many acquisitions pass between two sweeps of expired, unreleased locks (amortized O(1)). */
const SWEEP_EVERY_GRANTS = 1024;
/** A replica with a wrong clock warns at most this often. */
const CLOCK_WARNING_EVERY_MS = 60_000;
/** A tick may be this far ahead of the Redis clock at least (`tickAheadLimitMs` default: max(ttl, this)). */
const MIN_TICK_AHEAD_LIMIT_MS = 60_000;

const RESOLVED: Promise<void> = Promise.resolve();
const ACQUIRING: unique symbol = Symbol('acquisition in flight');
const same = <T>(value: T): T => value;
export const isLock = (attempt: Attempt): attempt is LockHandle => typeof attempt !== 'string';

/**
 * Takes, extends and releases locks in a store, and remembers the ones this instance holds. A
 * lock `key` is the string `<keyPrefix>lock:{<key>}`; fenced or scheduled ones also use the hash
 * `<keyPrefix>lock:{<key>}:state`.
 */
export class LockAcquirer implements LockIssuer {
  /**
   * By lock name as given (building the Redis key would cost a hash per lookup): the lock taken
   * last, held or not, or ACQUIRING while an acquisition is in flight, so a concurrent one in this
   * instance is refused at once. Released locks stay until the next acquisition of their name or
   * the next sweep: replacing an entry is cheaper than deleting and re-adding it.
   */
  private readonly held = new Map<string, LockHandle | typeof ACQUIRING>();
  /** Set when closing starts: no acquisition is granted after that. */
  private closed = false;
  /** Wakes retry loops waiting between attempts when closing starts. */
  private readonly closeWaits = new AbortController();
  private grantsSinceSweep = 0;
  private lastClockWarningAt = -Infinity;
  private readonly failOpen: boolean;

  constructor(
    private readonly options: ResolvedLockOptions,
    private readonly store: LockStore,
    private readonly drainer: RunDrain,
    private readonly events: LockEvents,
  ) {
    this.failOpen = options.failMode === 'open';
  }

  lockKeyOf(key: string): string {
    return lockKeyOf(this.options.keyPrefix, key);
  }

  /** No acquisition is granted from now on; one in flight is undone when its reply comes. */
  stopGranting(): void {
    this.closed = true;
    this.closeWaits.abort();
  }

  /** How many locks this instance holds now (a walk over the map: for metrics collection, not hot paths). */
  heldCount(): number {
    let count = 0;
    for (const lock of this.held.values()) if (lock !== ACQUIRING && lock.isHeld) count++;
    return count;
  }

  /** The lock last taken under `key`, held or not. */
  lockNamed(key: string): LockHandle | undefined {
    const lock = this.held.get(key);
    return lock === ACQUIRING ? undefined : lock;
  }

  /** One attempt, or retries until `waitMs` has passed while the lock is held elsewhere. */
  acquire(key: string, ttlMs: number, settings: AcquireSettings, occurrence: Occurrence): Promise<Attempt> {
    return this.acquireThen(key, ttlMs, settings, occurrence, same);
  }

  /**
   * `acquire`, handing the outcome to `then`. A single attempt calls `then` as soon as the store
   * answers: a store that answers at once (the in-memory one) runs it in the caller's turn.
   */
  acquireThen<R>(
    key: string,
    ttlMs: number,
    settings: AcquireSettings,
    occurrence: Occurrence,
    then: (attempt: Attempt) => R,
  ): Promise<R> {
    if (settings.waitMs > 0 || settings.signal) {
      return this.acquireWithRetries(key, ttlMs, settings, occurrence).then(then);
    }
    return this.attempt(key, ttlMs, settings, occurrence, (attempt) => then(this.handOver(attempt, settings)));
  }

  private async acquireWithRetries(
    key: string,
    ttlMs: number,
    settings: AcquireSettings,
    occurrence: Occurrence,
  ): Promise<Attempt> {
    const { signal } = settings;
    const deadline = monotonicNow() + settings.waitMs;
    for (let retry = 0; ; retry++) {
      signal?.throwIfAborted();
      const attempt = await this.attempt(key, ttlMs, settings, occurrence, same);
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
      this.drainer.hold(attempt);
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
    this.drainer.letGo(lock);
    if (!lock.markReleased()) return record ? this.recordRun(record) : RESOLVED;
    const holdMs =
      lock.minHoldMs === 0 ? 0 : Math.max(0, Math.ceil(lock.minHoldMs - (monotonicNow() - lock.requestedAt)));
    this.drainer.callStarted();
    const released = (reply: OwnerReply): void => {
      this.drainer.callEnded();
      if (reply === 'not-owner' && !lock.withoutRedis) {
        this.options.logger.debug?.(`Lock ${lock.storedKey} had expired before its release; it was not deleted.`);
      }
    };
    return this.store.release(lock.storedKey, lock.token, holdMs, released, record);
  }

  /** Appends a run's record to its history, without touching the lock. */
  recordRun(record: RunHistoryWrite): Promise<void> {
    this.drainer.callStarted();
    return this.store.recordRun(record).then(() => this.drainer.callEnded());
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
    key: string,
    ttlMs: number,
    settings: AcquireSettings,
    occurrence: Occurrence,
    then: (attempt: Attempt) => R,
  ): Promise<R> {
    if (this.closed) return Promise.resolve(then(this.reported('closed', key, occurrence)));
    const previous = this.held.get(key);
    if (previous === ACQUIRING || previous?.isHeld)
      return Promise.resolve(then(this.reported('held', key, occurrence)));
    const request = this.requestFor(key, ttlMs, settings.fencing ?? this.options.fencing, occurrence);
    const requestedAt = monotonicNow();
    this.held.set(key, ACQUIRING);
    this.drainer.callStarted();
    // Under fail-open the handle keeps the token, and its release deletes a late acquisition.
    return this.store.acquire(request, !this.failOpen, (reply) => {
      this.drainer.callEnded();
      let attempt = this.decide(key, request, reply, settings.minHoldMs, requestedAt, occurrence);
      if (isLock(attempt) && this.closed) attempt = this.undo(attempt, request);
      if (isLock(attempt)) this.held.set(key, attempt);
      else if (previous) this.held.set(key, previous);
      else this.held.delete(key);
      if (this.events.active) this.report(attempt, key, occurrence, requestedAt);
      return then(attempt);
    });
  }

  /** `reason`, reported to the listeners first. */
  private reported(reason: SkipReason, key: string, occurrence: Occurrence): SkipReason {
    if (this.events.active) this.report(reason, key, occurrence, monotonicNow());
    return reason;
  }

  private report(attempt: Attempt, key: string, { job, tick }: Occurrence, requestedAt: number): void {
    if (!isLock(attempt)) {
      this.events.emit({ type: 'skipped', key, job, tick, reason: attempt });
      return;
    }
    const { fencingToken, withoutRedis } = attempt;
    const latencyMs = monotonicNow() - requestedAt;
    this.events.emit({ type: 'acquired', key, job, tick, fencingToken, withoutRedis, latencyMs });
  }

  private requestFor(key: string, ttlMs: number, fencing: boolean, occurrence: Occurrence): LockRequest {
    const lockKey = this.lockKeyOf(key);
    const { tick, tickField, periodMs, job, tracked } = occurrence;
    const { tickAheadLimitMs, stateRetentionMs, operations } = this.options;
    const pausableJob = operations && tracked && job !== undefined ? job : '';
    return {
      lockKey,
      stateKey: tick === undefined && !fencing ? '' : stateKeyOf(lockKey),
      pausableJob,
      pauseKey: pausableJob === '' ? '' : pausedKeyOf(lockKey),
      token: operations ? holderToken(createToken(), this.options.replicaName, Date.now()) : createToken(),
      ttlMs,
      tick,
      tickField,
      fencing,
      tickAheadLimitMs: tickAheadLimitMs ?? Math.max(ttlMs, MIN_TICK_AHEAD_LIMIT_MS),
      stateRetentionMs: Math.max(stateRetentionMs, 2 * ttlMs, 2 * periodMs),
    };
  }

  /** An acquisition granted after closing started: give it back at once, tick included. */
  private undo(lock: LockHandle, request: LockRequest): 'closed' {
    lock.markReleased();
    if (!lock.withoutRedis) {
      this.drainer.callStarted();
      void this.store.cancel(request).then(() => this.drainer.callEnded());
    }
    return 'closed';
  }

  private decide(
    key: string,
    request: LockRequest,
    reply: AcquireReply,
    minHoldMs: number,
    requestedAt: number,
    { job, tracked }: Occurrence,
  ): Attempt {
    switch (reply.kind) {
      case 'held':
      case 'tick-served':
      case 'paused':
      case 'refused':
        return reply.kind;
      case 'clock-skew':
        this.warnClockSkew(key, request.tick!, reply.offsetMs);
        return 'clock-skew';
      case 'unavailable':
        if (!this.failOpen) return 'unavailable';
    }
    // One object of the final shape: copying a half-built one cost more than the rest of the call.
    const lock = new LockHandle(this, {
      key,
      storedKey: request.lockKey,
      token: request.token,
      ttlMs: request.ttlMs,
      minHoldMs,
      tick: request.tick,
      job,
      tracked,
      requestedAt,
      driftMs: this.store.driftMs(request.ttlMs),
      fencingToken: reply.kind === 'acquired' ? reply.fencingToken : undefined,
      withoutRedis: reply.kind === 'unavailable',
    });
    if (++this.grantsSinceSweep >= SWEEP_EVERY_GRANTS) this.forgetExpired();
    return lock;
  }

  private warnClockSkew(key: string, tick: number, offsetMs: number): void {
    const now = monotonicNow();
    if (now - this.lastClockWarningAt < CLOCK_WARNING_EVERY_MS) return;
    this.lastClockWarningAt = now;
    const tickFromRedisMs = tick - (Date.now() - offsetMs);
    const seconds = (ms: number): string => `${Math.abs(Math.round(ms / 1000))} s ${ms >= 0 ? 'ahead of' : 'behind'}`;
    this.options.logger.warn(
      `Refused tick ${new Date(tick).toISOString()} of lock "${key}": it is ${seconds(tickFromRedisMs)} the ` +
        `Redis server's clock, beyond tickAheadLimitMs ahead or stateRetentionMs behind; this process's clock is ` +
        `${seconds(offsetMs)} Redis's. Scheduled runs of this replica are skipped until its clock is synchronized (NTP).`,
    );
  }

  /** Drops released locks and those left to expire, so names never taken again do not pile up. */
  private forgetExpired(): void {
    this.grantsSinceSweep = 0;
    for (const [key, lock] of this.held) {
      if (lock === ACQUIRING || lock.isHeld) continue;
      lock.markReleased(); // stops the renewal of one left to expire
      this.drainer.letGo(lock);
      this.held.delete(key);
    }
  }
}
