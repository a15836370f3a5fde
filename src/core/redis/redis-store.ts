import type { Cluster, Redis } from 'ioredis';
import { monotonicNow } from '../clock';
import type { LockEvents } from '../events/lock-events';
import type { AcquireReply, LockRequest, LockStore, OwnerReply, RunHistoryWrite, ServerProbe } from '../lock-store';
import type { LockLogger } from '../logger';
import type { FailureCount, FailureStreak } from '../policies/failure-streak';
import type { LedgerQuery, LedgerRead, LedgerWrite } from '../policies/ledger';
import type { ConnectionMonitor } from './connection/connection-monitor';
import { NO_REPLY, REFUSED, type SettleReply } from './connection/connection-monitor';
import { FleetWrites } from './fleet-writes';
import { RedisConnection } from './redis-connection';
import {
  acquireReplyOf,
  type LuaScript,
  failureStreakOf,
  ledgerReadOf,
  POLICY_SCRIPTS,
  sendAcquire,
  sendAcquireJob,
  sendCancelAcquisition,
  sendCancelClaim,
  sendClaimOccurrence,
  sendExtendIfOwner,
  sendCountFailures,
  sendReadLedger,
  sendReleaseAndRecord,
  sendReleaseIfOwner,
  setReplyOf,
} from './scripts';

const UNAVAILABLE: AcquireReply = { kind: 'unavailable' };
const REFUSED_REPLY: AcquireReply = { kind: 'refused' };
const same = <T>(value: T): T => value;

/** What an owner-only script's reply means (1: done, 0: not ours), NO_REPLY and REFUSED included. */
const toOwnerReply = (reply: unknown): OwnerReply =>
  reply === NO_REPLY || reply === REFUSED ? 'unknown' : reply === 1 ? 'done' : 'not-owner';

/**
 * Locks on one Redis deployment: a standalone server, a Sentinel-managed master, or a Cluster.
 * The lock commands are here; the connection's life is `RedisConnection`'s, and what it writes
 * for the operators (run records, job declarations) is `FleetWrites`'.
 */
export class RedisStore implements LockStore {
  readonly ttlClock = monotonicNow;
  readonly keepsLedger = true;
  private readonly connection: RedisConnection;
  private readonly monitor: ConnectionMonitor;
  private readonly fleetWrites: FleetWrites;

  constructor(
    readonly client: Redis | Cluster,
    ownsClient: boolean,
    readonly label: string,
    private readonly timeoutMs: number,
    logger: LockLogger,
    whileDown: string,
    /** Replicas that must acknowledge a tick or fencing acquisition (`WAIT`); 0 for none. */
    private readonly waitForReplicas = 0,
    events?: LockEvents,
  ) {
    this.connection = new RedisConnection(client, ownsClient, label, timeoutMs, logger, whileDown, events, () =>
      this.fleetWrites.redeclare(),
    );
    this.monitor = this.connection.monitor;
    this.fleetWrites = new FleetWrites(client, this.monitor);
  }

  isReady(): boolean {
    return this.monitor.isReady;
  }

  hasConnected(): boolean {
    return this.monitor.hasConnected;
  }

  /** The client, for its owner's own commands: the library stops coalescing its writes. */
  handOutClient(): Redis | Cluster {
    this.monitor.stopCoalescing();
    return this.client;
  }

  configurationProblem(): Error | undefined {
    return this.monitor.configurationProblem;
  }

  waitForReady(timeoutMs: number): Promise<boolean> {
    return this.connection.waitForReady(timeoutMs);
  }

  acquire<R>(request: LockRequest, cancelIfLate: boolean, then: (reply: AcquireReply) => R): Promise<R> {
    // Only what a failover must not lose waits for replicas: a served tick, a fencing token.
    if (this.waitForReplicas > 0 && (request.tick !== undefined || request.fencing)) {
      return this.acquireReplicated(request, cancelIfLate).then(then);
    }
    return this.acquireOnce(request, cancelIfLate, then);
  }

  /**
   * Takes the lock, then waits (`WAIT`, within what is left of the deadline) until
   * `waitForReplicas` replicas have it. Without their acknowledgement a failover could promote a
   * replica that never saw the lock or its tick; the fail mode decides: open keeps the lock,
   * closed gives it back (tick included) and reports Redis unavailable.
   */
  private async acquireReplicated(request: LockRequest, failClosed: boolean): Promise<AcquireReply> {
    const started = monotonicNow();
    const reply = await this.acquireOnce(request, failClosed, same);
    if (reply.kind !== 'acquired') return reply;
    const leftMs = Math.max(1, Math.floor(this.timeoutMs - (monotonicNow() - started)));
    const acknowledged = await this.monitor.call(
      () => this.client.call('WAIT', this.waitForReplicas, leftMs),
      (count) => (count === NO_REPLY || count === REFUSED ? 0 : Number(count)),
      request.lockKey,
    );
    if (acknowledged >= this.waitForReplicas || !failClosed) return reply;
    void this.cancel(request);
    return UNAVAILABLE;
  }

  private acquireOnce<R>(request: LockRequest, cancelIfLate: boolean, then: (reply: AcquireReply) => R): Promise<R> {
    const { lockKey, token, ttlMs, tick, fencing, pausableJob, claim } = request;
    if (claim) {
      return this.monitor.call(
        (afterNoScript: boolean) => sendClaimOccurrence(this.client, afterNoScript, request, claim),
        this.settleAcquisition(acquireReplyOf, request, cancelIfLate, then),
        lockKey,
      );
    }
    // A plain lock is the two-round-trip minimum: SET NX PX here, compare-and-delete on release.
    if (tick === undefined && !fencing && pausableJob === '') {
      return this.monitor.call(
        () => this.client.set(lockKey, token, 'PX', ttlMs, 'NX'),
        this.settleAcquisition(setReplyOf, request, cancelIfLate, then),
        lockKey,
      );
    }
    // A job that may be paused, and serves no tick and issues no fencing token, needs only the
    // pause check before its SET NX: a smaller script than ACQUIRE.
    const sendScript = tick === undefined && !fencing ? sendAcquireJob : sendAcquire;
    return this.monitor.call(
      (afterNoScript: boolean) => sendScript(this.client, afterNoScript, request),
      this.settleAcquisition(acquireReplyOf, request, cancelIfLate, then),
      lockKey,
    );
  }

  /**
   * What an acquisition's reply, or its absence, means for the caller (`readReply` reads a plain
   * `SET` or a script's reply); a grant that lands after the deadline is given back when asked.
   */
  private settleAcquisition<R>(
    readReply: (reply: unknown) => AcquireReply,
    request: LockRequest,
    cancelIfLate: boolean,
    then: (reply: AcquireReply) => R,
  ): SettleReply<unknown, R> {
    return (reply, late) => {
      if (reply === REFUSED) return then(REFUSED_REPLY);
      if (reply !== NO_REPLY) return then(readReply(reply));
      if (cancelIfLate) this.cancelWhenLate(late, readReply, request);
      return then(UNAVAILABLE);
    };
  }

  cancel(request: LockRequest): Promise<void> {
    const { lockKey, token, tick, claim } = request;
    if (claim) {
      return this.monitor.call(
        (afterNoScript) => sendCancelClaim(this.client, afterNoScript, request, claim),
        () => undefined,
      );
    }
    if (tick === undefined) return this.release(lockKey, token, 0, () => undefined);
    return this.monitor.call(
      (afterNoScript) => sendCancelAcquisition(this.client, afterNoScript, { ...request, tick }),
      () => undefined,
    );
  }

  extend(lockKey: string, token: string, ttlMs: number): Promise<OwnerReply> {
    return this.monitor.call(
      (afterNoScript) => sendExtendIfOwner(this.client, afterNoScript, lockKey, token, ttlMs),
      toOwnerReply,
      lockKey,
    );
  }

  release<R>(
    lockKey: string,
    token: string,
    holdMs: number,
    then: (reply: OwnerReply) => R,
    record?: RunHistoryWrite,
  ): Promise<R> {
    return this.monitor.call(
      (afterNoScript) =>
        record
          ? sendReleaseAndRecord(this.client, afterNoScript, lockKey, token, holdMs, record)
          : sendReleaseIfOwner(this.client, afterNoScript, lockKey, token, holdMs),
      (reply) => then(toOwnerReply(reply)),
      lockKey,
    );
  }

  preparePolicies(): void {
    this.loadScripts(POLICY_SCRIPTS);
  }

  /** Loads `scripts` now and on every new connection: their first call is one EVALSHA. */
  loadScripts(scripts: readonly LuaScript[]): void {
    this.connection.loadAlso(scripts);
  }

  settleOccurrence(write: LedgerWrite): Promise<void> {
    return this.fleetWrites.settleOccurrence(write);
  }

  readLedger(query: LedgerQuery): Promise<LedgerRead | undefined> {
    return this.monitor.call(
      (afterNoScript: boolean) => sendReadLedger(this.client, afterNoScript, query),
      (reply) => (reply === NO_REPLY || reply === REFUSED ? undefined : ledgerReadOf(reply, query.job)),
      query.stateKey,
    );
  }

  countFailures(write: FailureCount): Promise<FailureStreak | undefined> {
    return this.monitor.call(
      (afterNoScript: boolean) => sendCountFailures(this.client, afterNoScript, write),
      (reply) => (reply === NO_REPLY || reply === REFUSED ? undefined : failureStreakOf(reply)),
      write.stateKey,
    );
  }

  beat(key: string, value: string, ttlMs: number): Promise<void> {
    return this.monitor.call(
      () => this.client.set(key, value, 'PX', ttlMs),
      () => undefined,
      key,
    );
  }

  alive(keys: readonly string[]): Promise<boolean[] | undefined> {
    return this.monitor.call(
      () => Promise.all(keys.map((key) => this.client.exists(key))),
      (reply) => (reply === NO_REPLY || reply === REFUSED ? undefined : reply.map((count) => count === 1)),
    );
  }

  recordRun(record: RunHistoryWrite): Promise<void> {
    return this.fleetWrites.recordRun(record);
  }

  declare(key: string, fields: readonly string[], onlyWhereAbsent = false): Promise<void> {
    return this.fleetWrites.declare(key, fields, onlyWhereAbsent);
  }

  probe(): Promise<ServerProbe[]> {
    return this.connection.probe();
  }

  driftMs(): number {
    return 0; // one server's clock times the TTL, and the holder's local view errs on the short side
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  /** An acquisition that lands after the deadline would hold a lock (and a tick) no one uses. */
  private cancelWhenLate(
    late: Promise<unknown> | undefined,
    readReply: (reply: unknown) => AcquireReply,
    request: LockRequest,
  ): void {
    late?.then(
      (reply) => {
        if (readReply(reply).kind === 'acquired') void this.cancel(request);
      },
      () => undefined,
    );
  }
}
