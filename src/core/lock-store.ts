import type { FailureCount, FailureStreak } from './policies/failure-streak';
import type { LedgerQuery, LedgerRead, LedgerWrite, OccurrenceClaim } from './policies/ledger';

/** One acquisition as the engine asks a store for it. */
export interface LockRequest {
  readonly lockKey: string;
  /** The state hash (fencing counter, latest ticks); only used when `tick` or `fencing` is set. */
  readonly stateKey: string;
  readonly token: string;
  readonly ttlMs: number;
  /** The scheduled tick served, in ms since the epoch, or undefined. */
  readonly tick: number | undefined;
  /** The state hash field that keeps the latest tick served by this job. */
  readonly tickField: string;
  /** Issue a fencing token (a store that cannot order them issues none). */
  readonly fencing: boolean;
  /** A tick further ahead of the Redis clock than this is refused, unrecorded. */
  readonly tickAheadLimitMs: number;
  /** The state hash lives this long after its last use; a tick older than this is refused. */
  readonly stateRetentionMs: number;
  /** The job's name when it can be paused fleet-wide (refused while a field of `pauseKey`), else ''. */
  readonly pausableJob: string;
  /** The hash of the jobs paused on this lock name (same hash slot); '' with no `pausableJob`. */
  readonly pauseKey: string;
  /**
   * For a job with a policy: the occurrence and attempt this acquisition claims in the job's
   * ledger, which decides instead of the latest tick alone (see `policies/ledger.ts`).
   */
  readonly claim: OccurrenceClaim | undefined;
}

/** A run's record, appended to its lock's run history with the release (see RunRecord). */
export interface RunHistoryWrite {
  readonly streamKey: string;
  /** Field names and values, alternating. */
  readonly fields: readonly string[];
  /** Entries to keep (approximately). */
  readonly maxLength: number;
  readonly retentionMs: number;
}

/**
 * A store's answer to an acquisition. `unavailable`: no answer in time, so the fail mode decides.
 * `refused`: Redis is up and refused the command (wrong settings, a key of another type): no lock,
 * and no fail mode either.
 * `clock-skew`: the tick is too far from the Redis clock to be judged; `offsetMs` is how far this
 * process's clock is ahead of Redis's (negative: behind).
 */
export type AcquireReply =
  | { readonly kind: 'acquired'; readonly fencingToken: number | undefined }
  | { readonly kind: 'held' }
  | { readonly kind: 'buffered' }
  | { readonly kind: 'tick-served' }
  | { readonly kind: 'paused' }
  | { readonly kind: 'clock-skew'; readonly offsetMs: number }
  | { readonly kind: 'refused' }
  | { readonly kind: 'unavailable' };

/**
 * One server's answer to `TIME`: how long the round trip took and how far this process's clock is
 * ahead of the server's (negative: behind), estimated at the middle of the round trip. `error`
 * when it did not answer within the acquire timeout, or refused.
 */
export type ServerProbe =
  | { readonly server: string; readonly latencyMs: number; readonly clockOffsetMs: number }
  | { readonly server: string; readonly error: string };

/** A store's answer to an extension or release: done, refused (the lock is not ours), or no answer. */
export type OwnerReply = 'done' | 'not-owner' | 'unknown';

/**
 * Where locks live: one Redis (standalone, Sentinel or Cluster) or a quorum of them. Every call
 * resolves within the acquire timeout and never rejects. `acquire` and `release` hand their reply
 * to the caller's `then` and resolve with what it returns, so a lock decision costs no promise
 * beyond the store's own.
 */
export interface LockStore {
  /** Where it is, for log lines; no passwords. */
  readonly label: string;
  /** Whether it keeps the occurrence ledger job policies need (`settleOccurrence`, `readLedger`, claims). */
  readonly keepsLedger: boolean;
  isReady(): boolean;
  /** Whether it has been ready once since it was created (for a quorum: a majority of its nodes). */
  hasConnected(): boolean;
  /** The error Redis replied to these settings (a password, a database, ACL permissions), if any. */
  configurationProblem(): Error | undefined;
  waitForReady(timeoutMs: number): Promise<boolean>;
  /**
   * Takes the lock. With `cancelIfLate`, an acquisition that lands after the deadline is cancelled
   * (see `cancel`) as soon as its reply arrives: the caller will not use it.
   */
  acquire<R>(request: LockRequest, cancelIfLate: boolean, then: (reply: AcquireReply) => R): Promise<R>;
  /**
   * Undoes an acquisition that will not be used: deletes the lock while it holds the request's
   * token, and hands back the tick it recorded so another replica can serve it.
   */
  cancel(request: LockRequest): Promise<void>;
  extend(lockKey: string, token: string, ttlMs: number): Promise<OwnerReply>;
  /**
   * Ends our hold; `holdMs` > 0 keeps the lock that much longer instead of deleting it. With
   * `record`, the run's record is appended to its history in the same call.
   */
  release<R>(
    lockKey: string,
    token: string,
    holdMs: number,
    then: (reply: OwnerReply) => R,
    record?: RunHistoryWrite,
  ): Promise<R>;
  /**
   * Writes how an attempt of a job with a policy ended to its ledger, unless a later attempt is
   * there already. Not acknowledged (Redis down), it is sent again after each reconnection until it is.
   */
  settleOccurrence(write: LedgerWrite): Promise<void>;
  /**
   * A job's ledger from `query.from` on, stamping when its current definition was first seen;
   * undefined when the store cannot answer in time.
   */
  readLedger(query: LedgerQuery): Promise<LedgerRead | undefined>;
  /**
   * Counts how an occurrence of a job with `pauseAfterFailures` ended into its failure streak, and
   * pauses the job when the streak reaches the limit; undefined when the store cannot answer in time.
   */
  countFailures(write: FailureCount): Promise<FailureStreak | undefined>;
  /** Readies what job policies send (Redis: their scripts, loaded now and on each connection). */
  preparePolicies(): void;
  /** Sets `key` to `value` for `ttlMs`: a live instance's heartbeat. Never rejects. */
  beat(key: string, value: string, ttlMs: number): Promise<void>;
  /** Which of the heartbeat `keys` are set, in their order; undefined when the store cannot answer in time. */
  alive(keys: readonly string[]): Promise<boolean[] | undefined>;
  /** Appends a run's record without releasing anything (a run abandoned at shutdown). */
  recordRun(record: RunHistoryWrite): Promise<void>;
  /**
   * Sets `fields` (name, value, alternating) of the hash `key` (with `onlyWhereAbsent`, the fields it
   * lacks): the jobs a replica declares, and when each was first declared. Does
   * not wait for a connection; a store sets them again when it reconnects.
   */
  declare(key: string, fields: readonly string[], onlyWhereAbsent?: boolean): Promise<void>;
  /** Asks each server for its time (`TIME`), within the acquire timeout: what a health check reports. */
  probe(): Promise<ServerProbe[]>;
  /**
   * Now, on the clock a holder measures its lock's TTL on: the monotonic clock for Redis (a step
   * of the wall clock changes no lock's validity), the store's own clock in memory (so fake timers
   * move a handle's `isHeld` and the store's expiry together).
   */
  readonly ttlClock: () => number;
  /** How much of a lock's TTL to discount for clock drift between the holder and the stores. */
  driftMs(ttlMs: number): number;
  /** Closes the connections the store opened (not shared clients), leaving no timer behind. */
  close(): Promise<void>;
}
