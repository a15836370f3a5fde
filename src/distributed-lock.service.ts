import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { LockEventListener } from './core/events/lock-events';
import type { FleetInspector, OverdueJob } from './core/fleet/fleet-inspector';
import type { FleetNotices } from './core/fleet/fleet-operations';
import type { JobDeclaration } from './core/fleet/fleet-records';
import type { JobDefinition } from './core/jobs/job-definition';
import { type LockedRun, LockEngine } from './core/lock-engine';
import type { LockStore, ServerProbe } from './core/lock-store';
import type { AcquireOptions } from './core/locks/acquire-options';
import type { LockHandle } from './core/locks/lock-handle';
import type { DistributedLockOptions } from './core/options/lock-options';
import { DISTRIBUTED_LOCK_OPTIONS, DISTRIBUTED_LOCK_STORE } from './distributed-lock.constants';
import { moduleLogger } from './lock-logger';

/**
 * Redis locks for one Nest application: `acquireLock`, `releaseLock`, `extendLock`, `withLock`,
 * `holdsLock`, `isConnected`. Provided by `DistributedLockModule`; `@DistributedLock` uses it.
 * Each method is the core `LockEngine`'s of the same name (see there).
 *
 * @example
 * constructor(private readonly lockService: DistributedLockService) {}
 *
 * if (await this.lockService.acquireLock('my-lock', 60_000)) {
 *   try { await work(); } finally { await this.lockService.releaseLock('my-lock'); }
 * }
 */
/** Each service's engine, for the module's own providers (the job explorer): not a member users see. */
const engines = new WeakMap<DistributedLockService, LockEngine>();

/** @internal The engine behind `service`. */
export function engineOf(service: DistributedLockService): LockEngine {
  return engines.get(service)!;
}

@Injectable()
export class DistributedLockService {
  private readonly engine: LockEngine;

  constructor(
    @Inject(DISTRIBUTED_LOCK_OPTIONS) options: DistributedLockOptions,
    @Optional() @Inject(DISTRIBUTED_LOCK_STORE) store?: LockStore,
  ) {
    this.engine = new LockEngine({ ...options, logger: moduleLogger(options) }, store);
    engines.set(this, this.engine);
  }

  /** `true` when this instance now holds `key`; `false` when someone holds it; the fail mode when Redis does not answer. */
  acquireLock(key: string, ttlMs: number): Promise<boolean> {
    return this.engine.acquireLock(key, ttlMs);
  }

  /** Deletes the lock only while it holds this instance's token. Never rejects. */
  releaseLock(key: string): Promise<void> {
    return this.engine.releaseLock(key);
  }

  /** Sets the TTL of a lock this instance still owns to `ttlMs` from now; `false` if it is no longer ours. */
  extendLock(key: string, ttlMs: number): Promise<boolean> {
    return this.engine.extendLock(key, ttlMs);
  }

  /** Whether this instance holds `key` by its own reckoning (taken, not released, TTL not passed). */
  holdsLock(key: string): boolean {
    return this.engine.holdsLock(key);
  }

  /** The fencing token of the lock this instance holds on `key`, when taken with `fencing`. */
  fencingToken(key: string): number | undefined {
    return this.engine.fencingToken(key);
  }

  /** Takes the lock and returns its handle, retrying up to `waitMs`; `undefined` when it stays held elsewhere. */
  acquire(key: string, ttlMs: number, options?: AcquireOptions): Promise<LockHandle | undefined> {
    return this.engine.acquire(key, ttlMs, options);
  }

  /** Runs `fn` only when the lock is taken, extends it meanwhile, and always releases it. */
  withLock<T>(
    key: string,
    ttlMs: number,
    fn: (lock: LockHandle) => T | Promise<T>,
    options?: AcquireOptions,
  ): Promise<LockedRun<Awaited<T>>> {
    return this.engine.withLock(key, ttlMs, fn, options);
  }

  /** Runs a guarded job named `jobName`: `fn` when the lock is taken, nothing (logged) otherwise. */
  runJob<T>(
    jobName: string,
    key: string,
    ttlMs: number,
    fn: () => T | Promise<T>,
    options?: AcquireOptions,
  ): Promise<Awaited<T> | undefined> {
    return this.engine.runJob(jobName, key, ttlMs, fn, options);
  }

  /** Runs a `JobDefinition` (what `@DistributedLock` calls), serving the occurrence its schedule names now. */
  runDefinedJob<T>(job: JobDefinition, fn: () => T | Promise<T>, lockName?: string): Promise<Awaited<T> | undefined> {
    return this.engine.runDefinedJob(job, fn, lockName);
  }

  /** Whether Redis is up and ready for commands (for a quorum: a majority of its nodes). */
  isConnected(): boolean {
    return this.engine.isConnected();
  }

  /** Waits (bounded, default `acquireTimeoutMs`) for the connection; never rejects; `false` once closing. */
  waitUntilConnected(timeoutMs?: number): Promise<boolean> {
    return this.engine.waitUntilConnected(timeoutMs);
  }

  /** Throws the `DistributedLockConfigError` naming the setting Redis refused, if any (called at bootstrap). */
  throwIfMisconfigured(): void {
    this.engine.throwIfMisconfigured();
  }

  /** Calls `listener` with every lock event; returns the function that stops it. */
  onEvent(listener: LockEventListener): () => void {
    return this.engine.onEvent(listener);
  }

  /** The ioredis client in use; once read, the library stops coalescing its own writes on it. */
  get client(): Redis | Cluster {
    return this.engine.client;
  }

  /** Reads and steers the fleet's records (jobs, locks, runs, missed, pause…), each call bounded. */
  get fleet(): FleetInspector {
    return this.engine.fleet;
  }

  /** The `@Cron` jobs whose latest due occurrence ran nowhere; `undefined` where no records are kept. */
  overdueJobs(options: { graceMs: number }): Promise<OverdueJob[] | undefined> {
    return this.engine.overdueJobs(options);
  }

  /** The jobs paused fleet-wide (who, when, why) and schedule drift; `undefined` where no records are kept. */
  fleetNotices(): Promise<FleetNotices | undefined> {
    return this.engine.fleetNotices();
  }

  /** Declares jobs run with `runJob` for the operations tools (decorated methods are declared at startup). */
  declareJobs(jobs: readonly JobDeclaration[]): Promise<void> {
    return this.engine.declareJobs(jobs);
  }

  /** Per Redis server: round trip and clock offset from `TIME`, or why it did not answer. Never rejects. */
  probe(): Promise<ServerProbe[]> {
    return this.engine.probe();
  }

  /** What Nest's shutdown calls first: no new lock, and runs in progress finish (bounded). */
  drain(): Promise<void> {
    return this.engine.drain();
  }

  /** Drains, then closes the connection the module opened. */
  close(): Promise<void> {
    return this.engine.close();
  }
}
