import type { LockEvent } from '../core/events/lock-events';
import { jobBufferedField } from '../core/keys';
import type { AcquireReply, LockRequest, LockStore, OwnerReply, ServerProbe } from '../core/lock-store';
import type { FailureCount, FailureStreak } from '../core/policies/failure-streak';
import type { LedgerQuery, LedgerRead, LedgerWrite } from '../core/policies/ledger';
import { InMemoryLedgers } from './in-memory-ledger';
import {
  DeclaredJobs,
  type InMemoryLockStoreOptions,
  type LockState,
  PausedJobs,
  type RecordedOf,
  recordedOf,
  type RecordedLockEvent,
  type StoredLock,
} from './in-memory-records';

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Locks in this process's memory, with the semantics of the Redis store: TTLs, owner-only release
 * and extension, a minimum hold, per-job tick deduplication judged against the store's clock,
 * increasing fencing tokens. It answers in the caller's turn, so a decorated handler runs in the
 * same turn as the timer that fired it. Give one store to several application contexts
 * (`DistributedLockTestingModule.forRoot({ store, replica })`) and they behave as replicas.
 * `simulateOutage()` makes it answer as an unreachable Redis, so the fail mode decides.
 *
 * Every replica's events are recorded in `events`, e.g. to assert that the second replica skipped.
 */
export class InMemoryLockStore implements LockStore {
  readonly label = 'in-memory lock store';
  readonly keepsLedger = true;
  private readonly locks = new Map<string, StoredLock>();
  private readonly states = new Map<string, LockState>();
  /** The occurrence ledgers of jobs with a policy, and the heartbeats of their instances. */
  private readonly ledgers: InMemoryLedgers;
  private readonly recorded: RecordedLockEvent[] = [];
  private readonly paused = new PausedJobs();
  private readonly declared = new DeclaredJobs();
  private down = false;
  private readonly now: () => number;
  /** No clock was given: the store's clock is this process's wall clock. */
  private readonly clockIsWall: boolean;
  /** The store's clock: a holder's TTL follows the faked time as the store's expiry does. */
  readonly ttlClock: () => number;

  constructor(options: InMemoryLockStoreOptions = {}) {
    this.now = options.now ?? (() => Date.now());
    this.clockIsWall = options.now === undefined;
    this.ttlClock = this.now;
    this.ledgers = new InMemoryLedgers(this.now);
  }

  /** Every event of every replica using this store, oldest first. */
  get events(): readonly RecordedLockEvent[] {
    return this.recorded;
  }

  /** The runs that settled (`ran` events), of one job (`Class.method`) or lock name if given. */
  runs(jobOrKey?: string): RecordedOf<'ran'>[] {
    return recordedOf(this.recorded, 'ran', jobOrKey);
  }

  /** The acquisitions refused (`skipped` events, with their `reason`), of one job or lock name if given. */
  skips(jobOrKey?: string): RecordedOf<'skipped'>[] {
    return recordedOf(this.recorded, 'skipped', jobOrKey);
  }

  /** @internal Records an event of `replica` (the testing module subscribes each replica). */
  record(replica: string, event: LockEvent): void {
    this.recorded.push({ ...event, replica });
  }

  /**
   * From now until `simulateOutage(false)`, every call answers as a Redis that cannot be reached:
   * acquisitions are decided by the fail mode, extensions fail, releases leave the lock to its TTL.
   */
  simulateOutage(down = true): void {
    this.down = down;
  }

  /** @internal This store as one replica sees it: see `SimulatedReplica` (the fleet simulator's faults). */
  replicaView(reach: () => 'up' | 'unreachable' | 'gone'): InMemoryLockStore {
    const [store, held] = [this, { kind: 'held' } as const];
    return Object.create(this, {
      down: { get: () => store.down || reach() !== 'up', set: (down: boolean) => (store.down = down) },
      acquire: {
        value(this: InMemoryLockStore, ...args: Parameters<LockStore['acquire']>) {
          return reach() === 'gone' ? Promise.resolve(args[2](held)) : store.acquire.apply(this, args);
        },
      },
      record: { value: (replica: string, event: LockEvent) => reach() !== 'gone' && store.record(replica, event) },
    }) as InMemoryLockStore;
  }

  /** Pauses a job (`Class.method`) fleet-wide until resumed; refuses one with a computed lock name, as Redis does. */
  pauseJob(job: string): void {
    this.declared.checkPausable(job);
    this.paused.pause(job);
  }

  /** Resumes a paused job, and starts its count of failed occurrences (`pauseAfterFailures`) anew. */
  resumeJob(job: string): void {
    this.paused.resume(job);
  }

  /** Lets every occurrence be served again (locks and fencing counters stay). */
  forgetServedTicks(): void {
    for (const state of this.states.values()) state.ticks.clear();
    this.ledgers.clear();
  }

  /** Forgets everything: locks, served ticks, fencing counters, recorded events, paused jobs, a simulated outage. */
  reset(): void {
    this.locks.clear();
    this.states.clear();
    this.ledgers.clear();
    this.recorded.length = 0;
    this.paused.clear();
    this.down = false;
  }

  isReady(): boolean {
    return !this.down;
  }

  /** An in-memory store is there from the start. */
  hasConnected(): boolean {
    return true;
  }

  configurationProblem(): undefined {
    return undefined;
  }

  waitForReady(): Promise<boolean> {
    return Promise.resolve(!this.down);
  }

  acquire<R>(request: LockRequest, _cancelIfLate: boolean, then: (reply: AcquireReply) => R): Promise<R> {
    return Promise.resolve(then(this.take(request)));
  }

  cancel(request: LockRequest): Promise<void> {
    if (this.down) return RESOLVED;
    const ours = this.liveLock(request.lockKey)?.token === request.token;
    if (ours) this.locks.delete(request.lockKey);
    const state = this.liveState(request.stateKey);
    if (request.claim) {
      this.ledgers.cancel(request.claim, jobBufferedField(request.pausableJob), ours);
    } else if (request.tick !== undefined && state?.ticks.get(request.tickField) === request.tick) {
      state.ticks.set(request.tickField, request.tick - 1);
    }
    return RESOLVED;
  }

  extend(lockKey: string, token: string, ttlMs: number): Promise<OwnerReply> {
    if (this.down) return Promise.resolve('unknown');
    const lock = this.liveLock(lockKey);
    if (lock?.token !== token) return Promise.resolve('not-owner');
    lock.expiresAt = this.now() + ttlMs;
    return Promise.resolve('done');
  }

  release<R>(lockKey: string, token: string, holdMs: number, then: (reply: OwnerReply) => R): Promise<R> {
    return Promise.resolve(then(this.letGo(lockKey, token, holdMs)));
  }

  /** Keeps which lock name each declared job uses (the first-declared times are not kept). */
  declare(_key: string, fields: readonly string[]): Promise<void> {
    this.declared.declare(fields);
    return RESOLVED;
  }

  settleOccurrence(write: LedgerWrite): Promise<void> {
    if (!this.down) this.ledgers.settle(write); // as Redis's store, an end is not lost: it is sent again
    return RESOLVED;
  }

  readLedger(query: LedgerQuery): Promise<LedgerRead | undefined> {
    if (this.down) return Promise.resolve(undefined);
    const state = this.stateFor(query.stateKey, query.keepMs);
    return Promise.resolve(this.ledgers.read(query, state.ticks.get(query.tickField)));
  }

  countFailures(write: FailureCount): Promise<FailureStreak | undefined> {
    return Promise.resolve(this.down ? undefined : this.paused.countFailures(write));
  }

  /** Nothing to ready in memory. */
  preparePolicies(): void {}

  beat(key: string, _value: string, ttlMs: number): Promise<void> {
    if (!this.down) this.ledgers.beat(key, ttlMs);
    return RESOLVED;
  }

  alive(keys: readonly string[]): Promise<boolean[] | undefined> {
    return Promise.resolve(this.down ? undefined : this.ledgers.alive(keys));
  }

  /** Run history is not kept: `runs()` reads the recorded events instead. */
  recordRun(): Promise<void> {
    return RESOLVED;
  }

  probe(): Promise<ServerProbe[]> {
    const server = this.label;
    if (this.down) return Promise.resolve([{ server, error: 'simulated outage' }]);
    // The default clock is Date.now itself: two reads of it may straddle a millisecond, not an offset.
    const clockOffsetMs = this.clockIsWall ? 0 : Date.now() - this.now();
    return Promise.resolve([{ server, latencyMs: 0, clockOffsetMs }]);
  }

  driftMs(): number {
    return 0;
  }

  /** Nothing to close: the store outlives the applications sharing it. */
  close(): Promise<void> {
    return RESOLVED;
  }

  /**
   * What the Redis acquisition scripts do, in the same order: ACQUIRE, or CLAIM_OCCURRENCE for a
   * job with a policy (`redis/scripts/claim-occurrence.ts`), whose ledger `InMemoryLedgers` keeps.
   */
  private take(request: LockRequest): AcquireReply {
    if (this.down) return { kind: 'unavailable' };
    const now = this.now();
    const { tick, claim } = request;
    const bufferedField = jobBufferedField(request.pausableJob);
    const judgeable =
      tick === undefined || (tick <= now + request.tickAheadLimitMs && tick >= now - request.stateRetentionMs);
    if (request.pausableJob !== '' && this.paused.has(request.pausableJob)) {
      if (claim && judgeable) this.ledgers.paused(claim, tick!);
      return { kind: 'paused' };
    }
    if (!judgeable) return { kind: 'clock-skew', offsetMs: Date.now() - now };
    const served = tick === undefined ? undefined : this.liveState(request.stateKey)?.ticks.get(request.tickField);
    const refused = claim ? this.ledgers.refuses(claim, tick!, served) : served !== undefined && served >= tick!;
    if (refused) return { kind: 'tick-served' };
    if (this.liveLock(request.lockKey)) {
      return claim && this.ledgers.held(claim, tick!, bufferedField) ? { kind: 'buffered' } : { kind: 'held' };
    }
    this.locks.set(request.lockKey, { token: request.token, expiresAt: now + request.ttlMs });
    if (tick === undefined && !request.fencing) return { kind: 'acquired', fencingToken: undefined };
    if (claim) this.ledgers.granted(claim, tick!, bufferedField);
    const state = this.stateFor(request.stateKey, request.stateRetentionMs + request.tickAheadLimitMs);
    // A claim by a policy leaves the schedule's latest tick alone, and never moves it back.
    const serves = claim
      ? claim.trigger === 'schedule' && (served === undefined || tick! > served)
      : tick !== undefined;
    if (serves) state.ticks.set(request.tickField, tick!);
    return this.fenced(request, state, now);
  }

  private fenced(request: LockRequest, state: LockState, now: number): AcquireReply {
    if (!request.fencing) return { kind: 'acquired', fencingToken: undefined };
    // As Redis: max(last + 1, its clock in microseconds), so tokens keep growing once the state expired.
    state.fence = Math.max(state.fence + 1, Math.floor(now * 1000));
    return { kind: 'acquired', fencingToken: state.fence };
  }

  private letGo(lockKey: string, token: string, holdMs: number): OwnerReply {
    if (this.down) return 'unknown';
    const lock = this.liveLock(lockKey);
    if (lock?.token !== token) return 'not-owner';
    if (holdMs > 0) lock.expiresAt = this.now() + holdMs;
    else this.locks.delete(lockKey);
    return 'done';
  }

  private liveLock(lockKey: string): StoredLock | undefined {
    const lock = this.locks.get(lockKey);
    if (lock && lock.expiresAt <= this.now()) {
      this.locks.delete(lockKey);
      return undefined;
    }
    return lock;
  }

  /** The live state hash of `stateKey`, created when absent, kept `keepMs` from now. */
  private stateFor(stateKey: string, keepMs: number): LockState {
    const state = this.liveState(stateKey) ?? { fence: 0, ticks: new Map(), expiresAt: 0 };
    this.states.set(stateKey, state);
    state.expiresAt = this.now() + keepMs;
    return state;
  }

  private liveState(stateKey: string): LockState | undefined {
    const state = this.states.get(stateKey);
    if (state && state.expiresAt <= this.now()) {
      this.states.delete(stateKey);
      return undefined;
    }
    return state;
  }
}
