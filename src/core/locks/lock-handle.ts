import { monotonicNow } from '../clock';
import { LockLostError } from '../errors';
import type { OccurrenceClaim, RunTrigger } from '../policies/ledger';
import { Deadlined, type DeadlineQueue } from '../redis/connection/deadline-queue';

/** What a lock handle needs from the engine that issued it. */
export interface LockIssuer {
  /** Asks Redis to extend; 'unknown' when Redis could not answer in time. */
  extendHeld(lock: LockHandle, ttlMs: number): Promise<'extended' | 'lost' | 'unknown'>;
  releaseHeld(lock: LockHandle): Promise<void>;
  lockLost(lock: LockHandle, error: LockLostError): void;
  /** When each auto-extended handle renews next: one timer for all of them, not one per handle. */
  readonly renewals: DeadlineQueue;
}

/** A handle's next renewal, queued in its issuer's `renewals`. */
class Renewal extends Deadlined {
  constructor(private readonly lock: LockHandle) {
    super(0);
  }

  expire(): void {
    void this.lock.renew();
  }
}

/** How a lock was taken, as the engine hands it to the handle. */
export interface LockGrant {
  readonly key: string;
  readonly storedKey: string;
  readonly token: string;
  readonly ttlMs: number;
  /** Increases with every acquisition of this key; undefined when taken without Redis. */
  readonly fencingToken: number | undefined;
  /** Taken without Redis, by the fail-open mode. */
  readonly withoutRedis: boolean;
  readonly minHoldMs: number;
  /** The scheduled tick this acquisition serves, in ms since the epoch, if any. */
  readonly tick: number | undefined;
  /** The guarded job it was taken for, if any. */
  readonly job: string | undefined;
  /** Whether the job's runs are recorded (a fixed lock name; see `Occurrence.tracked`). */
  readonly tracked: boolean;
  readonly trigger: RunTrigger;
  readonly attempt: number;
  /** The ledger claim it was taken with (a job with a policy). */
  readonly claim: OccurrenceClaim | undefined;
  /** When the acquisition was sent, on `clock`: the TTL counts from no later than this. */
  readonly requestedAt: number;
  /** The clock the TTL is measured on (the store's `ttlClock`). */
  readonly clock: () => number;
  /** What to discount from each TTL for clock drift (a quorum's allowance; 0 on one Redis). */
  readonly driftMs: number;
}

/**
 * A lock this process holds. `signal` aborts (with a `LockLostError`) when the lock is known or
 * presumed lost, so long jobs can stop before doing harm; `fencingToken` lets downstream systems
 * reject writes from a stale holder.
 *
 * @example
 * const lock = await lockService.acquire('ledger', 10_000, { waitMs: 5_000 });
 * if (lock) {
 *   try { await ledger.write(entry, { fencingToken: lock.fencingToken, signal: lock.signal }); }
 *   finally { await lock.release(); }
 * }
 */
export class LockHandle {
  readonly key: string;
  readonly fencingToken: number | undefined;
  /** True when Redis could not decide in time and the fail-open mode let the caller run unlocked. */
  readonly withoutRedis: boolean;
  /** The scheduled tick it serves (ms since the epoch): a `@Cron` handler's scheduled second. */
  readonly tick: number | undefined;
  /** The guarded job (`Class.method`) it was taken for; undefined for a plain lock. */
  readonly job: string | undefined;
  /** @internal Whether its run is recorded in the lock name's history. */
  readonly tracked: boolean;
  /** What started the run: `'schedule'`, or a policy (`'catch-up'`, `'retry'`). */
  readonly trigger: RunTrigger;
  /** The run's attempt at its occurrence, from 1 (above 1 for a retry). */
  readonly attempt: number;
  /** @internal The ledger claim it was taken with (a job with a policy). */
  readonly claim: OccurrenceClaim | undefined;
  /** When the acquisition was sent, in ms since the epoch (wall time, for logs and records). */
  readonly acquiredAt: number;
  /** @internal When the acquisition was sent, on `clock`. */
  readonly requestedAt: number;
  /** The clock its TTL is measured on: monotonic for Redis, the store's own in memory. */
  private readonly clock: () => number;
  /** @internal */ readonly storedKey: string;
  /** @internal */ readonly token: string;
  /** @internal */ readonly minHoldMs: number;
  /** @internal The TTL it was taken with, in ms. */
  readonly ttlMs: number;
  /** @internal Whether it extends itself while held (`autoExtend`). */
  extendsItself = false;
  /** @internal Abandoned at shutdown: its run was recorded then, and is not again when it ends. */
  wasAbandoned = false;
  /** @internal In the registry's list of holders at work, with its neighbours there. */
  running = false;
  /** @internal */ runningPrevious: LockHandle | undefined = undefined;
  /** @internal */ runningNext: LockHandle | undefined = undefined;
  private readonly driftMs: number;
  /** Created on first use of `signal`: most runs never look at it. */
  private controller: AbortController | undefined;
  private lostError: LockLostError | undefined;
  private validUntil: number;
  private released = false;
  private renewal: Renewal | undefined;

  constructor(
    private readonly issuer: LockIssuer,
    grant: LockGrant,
  ) {
    this.key = grant.key;
    this.storedKey = grant.storedKey;
    this.token = grant.token;
    this.ttlMs = grant.ttlMs;
    this.driftMs = grant.driftMs;
    this.fencingToken = grant.fencingToken;
    this.withoutRedis = grant.withoutRedis;
    this.minHoldMs = grant.minHoldMs;
    this.tick = grant.tick;
    this.job = grant.job;
    this.tracked = grant.tracked;
    this.trigger = grant.trigger;
    this.attempt = grant.attempt;
    this.claim = grant.claim;
    this.requestedAt = grant.requestedAt;
    this.clock = grant.clock;
    this.acquiredAt = Date.now() - (grant.clock() - grant.requestedAt);
    this.validUntil = grant.requestedAt + grant.ttlMs - grant.driftMs;
  }

  /** Aborts when the lock is lost; its `reason` is a `LockLostError`. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.lostError) this.controller.abort(this.lostError);
    }
    return this.controller.signal;
  }

  /** True until released or lost, and while its TTL has not passed by this process's (monotonic) clock. */
  get isHeld(): boolean {
    return !this.released && this.lostError === undefined && this.clock() < this.validUntil;
  }

  /**
   * @internal True once the lock is known or presumed lost: taken over, its TTL passed without a
   * confirmed extension, or abandoned at shutdown. A lock released by its holder is not lost.
   */
  get isLost(): boolean {
    return this.lostError !== undefined || (!this.released && this.clock() >= this.validUntil);
  }

  /** @internal How long ago the acquisition was sent, on the lock's clock. */
  elapsedMs(): number {
    return this.clock() - this.requestedAt;
  }

  /** Throws the `LockLostError` if the lock is lost; a cheap check between steps of a long job. */
  throwIfLost(): void {
    if (!this.released && this.clock() >= this.validUntil) this.lose(TTL_PASSED);
    if (this.lostError) throw this.lostError;
  }

  /** Sets the TTL to `ttlMs` (default: the TTL it was taken with) from now, if still ours. */
  async extend(ttlMs = this.ttlMs): Promise<boolean> {
    if (!this.isHeld) return false;
    if (this.withoutRedis) {
      this.validUntil = this.clock() + ttlMs;
      return true;
    }
    const sentAt = this.clock();
    const outcome = await this.issuer.extendHeld(this, ttlMs);
    if (outcome === 'lost') this.lose('Redis no longer had its token when it was extended');
    if (outcome !== 'extended' || this.released) return false;
    this.validUntil = sentAt + ttlMs - this.driftMs;
    return true;
  }

  /** Releases the lock (or keeps it until `minHoldMs` after acquisition). Never rejects. */
  release(): Promise<void> {
    return this.issuer.releaseHeld(this);
  }

  /**
   * @internal Extends the lock every third of its TTL until released. When the TTL passes without a
   * confirmed extension (Redis unreachable, or this process stalled), the lock counts as lost.
   */
  keepAlive(): void {
    this.extendsItself = true;
    this.scheduleRenewal();
  }

  /** @internal Marks the handle released and stops its timer; false if it already was. */
  markReleased(): boolean {
    if (this.released) return false;
    this.released = true;
    if (this.renewal) this.issuer.renewals.remove(this.renewal);
    return true;
  }

  /**
   * @internal Gives the lock up without deleting it, because its holder may still be running: stops
   * extending it (Redis lets it expire by its TTL) and aborts its signal with `reason`.
   */
  abandon(reason: string): void {
    this.wasAbandoned = true;
    this.lose(reason, false); // the engine logs what it abandons, all at once
  }

  private scheduleRenewal(): void {
    // Wake at the next renewal, or when the TTL runs out if that comes first (after failed renewals).
    const delay = Math.min(Math.floor(this.ttlMs / 3), this.validUntil - this.clock());
    const renewal = (this.renewal ??= new Renewal(this));
    this.issuer.renewals.remove(renewal);
    renewal.deadline = monotonicNow() + Math.max(1, delay);
    this.issuer.renewals.add(renewal);
  }

  /** @internal Its renewal is due: extends it, or counts it lost when its TTL passed first. */
  async renew(): Promise<void> {
    // After a stall, timers run in due order: this check comes before the job's next step.
    if (this.clock() >= this.validUntil) return this.lose(TTL_PASSED);
    await this.extend();
    if (this.isHeld) this.scheduleRenewal();
    else if (!this.released) this.lose(TTL_PASSED);
  }

  private lose(detail: string, report = true): void {
    if (this.released || this.lostError) return;
    if (this.renewal) this.issuer.renewals.remove(this.renewal);
    this.lostError = new LockLostError(this.key, detail);
    this.controller?.abort(this.lostError);
    if (report) this.issuer.lockLost(this, this.lostError);
  }
}

const TTL_PASSED = 'its TTL passed before an extension was confirmed';
