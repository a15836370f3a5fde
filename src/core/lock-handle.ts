import { LockLostError } from './errors';

/** What a lock handle needs from the engine that issued it. */
export interface LockIssuer {
  /** Asks Redis to extend; 'unknown' when Redis could not answer in time. */
  extendHeld(lock: LockHandle, ttlMs: number): Promise<'extended' | 'lost' | 'unknown'>;
  releaseHeld(lock: LockHandle): Promise<void>;
  lockLost(lock: LockHandle, error: LockLostError): void;
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
  /** When the acquisition was sent: the TTL counts from no later than this. */
  readonly requestedAt: number;
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
  readonly acquiredAt: number;
  /** @internal */ readonly storedKey: string;
  /** @internal */ readonly token: string;
  /** @internal */ readonly minHoldMs: number;
  private readonly ttlMs: number;
  private readonly controller = new AbortController();
  private validUntil: number;
  private released = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly issuer: LockIssuer,
    grant: LockGrant,
  ) {
    this.key = grant.key;
    this.storedKey = grant.storedKey;
    this.token = grant.token;
    this.ttlMs = grant.ttlMs;
    this.fencingToken = grant.fencingToken;
    this.withoutRedis = grant.withoutRedis;
    this.minHoldMs = grant.minHoldMs;
    this.tick = grant.tick;
    this.acquiredAt = grant.requestedAt;
    this.validUntil = grant.requestedAt + grant.ttlMs;
  }

  /** Aborts when the lock is lost; its `reason` is a `LockLostError`. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True until released or lost, and while its TTL has not passed by this process's clock. */
  get isHeld(): boolean {
    return !this.released && !this.controller.signal.aborted && Date.now() < this.validUntil;
  }

  /** Throws the `LockLostError` if the lock is lost; a cheap check between steps of a long job. */
  throwIfLost(): void {
    if (!this.isHeld && !this.released) this.lose('its TTL passed before an extension was confirmed');
    this.controller.signal.throwIfAborted();
  }

  /** Sets the TTL to `ttlMs` (default: the TTL it was taken with) from now, if still ours. */
  async extend(ttlMs = this.ttlMs): Promise<boolean> {
    if (!this.isHeld) return false;
    if (this.withoutRedis) {
      this.validUntil = Date.now() + ttlMs;
      return true;
    }
    const sentAt = Date.now();
    const outcome = await this.issuer.extendHeld(this, ttlMs);
    if (outcome === 'lost') this.lose('Redis no longer had its token when it was extended');
    if (outcome !== 'extended' || this.released) return false;
    this.validUntil = sentAt + ttlMs;
    if (this.expiryTimer) this.armExpiry();
    return true;
  }

  /** Releases the lock (or keeps it until `minHoldMs` after acquisition). Never rejects. */
  release(): Promise<void> {
    return this.issuer.releaseHeld(this);
  }

  /**
   * @internal Extends the lock every third of its TTL until released, and aborts `signal` when the
   * TTL passes without a confirmed extension.
   */
  keepAlive(): void {
    this.armExpiry();
    this.scheduleRenewal();
  }

  /** @internal Marks the handle released and stops its timers; false if it already was. */
  markReleased(): boolean {
    if (this.released) return false;
    this.released = true;
    this.stopTimers();
    return true;
  }

  private scheduleRenewal(): void {
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(1, Math.floor(this.ttlMs / 3)));
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    await this.extend();
    if (this.isHeld) this.scheduleRenewal();
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(
      () => this.lose('its TTL passed before an extension was confirmed'),
      Math.max(0, this.validUntil - Date.now()),
    );
    this.expiryTimer.unref();
  }

  private lose(detail: string): void {
    if (this.released || this.controller.signal.aborted) return;
    this.stopTimers();
    const error = new LockLostError(this.key, detail);
    this.controller.abort(error);
    this.issuer.lockLost(this, error);
  }

  private stopTimers(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
    this.renewTimer = this.expiryTimer = undefined;
  }
}
