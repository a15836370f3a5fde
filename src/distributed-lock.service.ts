import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { LockEngine } from './core/lock-engine';
import type { DistributedLockOptions } from './core/lock-options';
import { DISTRIBUTED_LOCK_OPTIONS } from './distributed-lock.constants';

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
export class DistributedLockService extends LockEngine implements OnModuleInit, OnApplicationShutdown {
  constructor(@Inject(DISTRIBUTED_LOCK_OPTIONS) options: DistributedLockOptions) {
    super({ ...options, logger: options.logger ?? new Logger('DistributedLock') });
  }

  /** Gives the first connection up to `acquireTimeoutMs`, then boots anyway: fail mode covers the rest. */
  async onModuleInit(): Promise<void> {
    await this.waitUntilConnected();
  }

  /** Releases this application's locks and closes the connection the module opened. */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
