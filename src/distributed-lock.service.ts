import {
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
  Optional,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { LockEngine } from './core/lock-engine';
import type { DistributedLockOptions } from './core/lock-options';
import type { JobDeclaration } from './core/fleet/fleet-records';
import type { LockStore } from './core/lock-store';
import { DISTRIBUTED_LOCK_OPTIONS, DISTRIBUTED_LOCK_STORE } from './distributed-lock.constants';
import type { JobDeclarer } from './distributed-lock.decorator';
import { applicationEventEmitter, forwardTo } from './event-emitter-bridge';

/**
 * Redis locks for one Nest application: `acquireLock`, `releaseLock`, `extendLock`, `withLock`,
 * `holdsLock`, `isConnected`. Provided by `DistributedLockModule`; `@DistributedLock` uses it.
 *
 * @example
 * constructor(private readonly lockService: DistributedLockService) {}
 *
 * if (await this.lockService.acquireLock('my-lock', 60_000)) {
 *   try { await work(); } finally { await this.lockService.releaseLock('my-lock'); }
 * }
 */
@Injectable()
export class DistributedLockService
  extends LockEngine
  implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  constructor(
    @Inject(DISTRIBUTED_LOCK_OPTIONS) options: DistributedLockOptions,
    @Optional() @Inject(DISTRIBUTED_LOCK_STORE) store?: LockStore,
    @Optional() private readonly moduleRef?: ModuleRef,
  ) {
    super({ ...options, logger: options.logger ?? new Logger('DistributedLock') }, store ?? undefined);
  }

  /** Gives the first connection up to `acquireTimeoutMs`, then boots anyway: fail mode covers the rest. */
  async onModuleInit(): Promise<void> {
    // With EventEmitterModule in the app, every lock event is also `distributed-lock.<type>` there.
    const emitter = this.moduleRef && applicationEventEmitter(this.moduleRef);
    if (emitter) this.onEvent(forwardTo(emitter));
    await this.waitUntilConnected();
    // Redis is reachable and says the settings are wrong: stop here rather than run unlocked,
    // closing the connection first (Nest runs no shutdown hook for a failed bootstrap).
    try {
      this.throwIfMisconfigured();
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** The `@DistributedLock` jobs of the instances Nest created in this application. */
  private readonly jobs = new Set<JobDeclarer>();

  /** @internal Called as Nest injects this service into an instance with guarded methods. */
  adoptJobs(jobs: readonly JobDeclarer[]): void {
    for (const job of jobs) this.jobs.add(job);
  }

  /** Declares this application's `@DistributedLock` jobs in Redis for the operations tools (see `declareJobs`). */
  async onApplicationBootstrap(): Promise<void> {
    const declarations = [...this.jobs].map((declare) => declare());
    await this.declareJobs(declarations.filter((job): job is JobDeclaration => job !== undefined));
  }

  /**
   * Stops taking locks and waits (up to `shutdownTimeoutMs`) for guarded runs in progress to
   * finish, so Nest does not close the app under a running job. See `drain()`.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  /** Closes the connection the module opened, once runs in progress are drained. */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
