import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationShutdown,
  type OnModuleInit,
  Optional,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { DistributedLockError } from './core/errors';
import type { LockStore } from './core/lock-store';
import { DISTRIBUTED_LOCK_STORE, IN_MEMORY_STORE_IN_APP } from './distributed-lock.constants';
import { DistributedLockService } from './distributed-lock.service';
import { applicationEventEmitter, forwardTo } from './event-emitter-bridge';

/**
 * What Nest's lifecycle does with the service: connect at startup (refusing to boot on settings
 * Redis refuses), forward lock events to `EventEmitterModule`, drain runs at shutdown, then close.
 */
@Injectable()
export class DistributedLockLifecycle implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  constructor(
    private readonly locks: DistributedLockService,
    @Optional() @Inject(DISTRIBUTED_LOCK_STORE) private readonly store?: LockStore | null,
    @Optional() @Inject(IN_MEMORY_STORE_IN_APP) private readonly inMemoryStoreInApp?: boolean,
    @Optional() private readonly moduleRef?: ModuleRef,
  ) {}

  /** Gives the first connection up to `acquireTimeoutMs`, then boots anyway: fail mode covers the rest. */
  async onModuleInit(): Promise<void> {
    if (this.inMemoryStoreInApp && !this.store) {
      // A test asked for the in-memory store, yet this module would take its locks in Redis.
      await this.locks.close();
      throw new DistributedLockError(
        'This application imports DistributedLockTestingModule and also boots DistributedLockModule against Redis. ' +
          'Replace the module instead of adding the testing one: withInMemoryLocks(Test.createTestingModule({ imports: [AppModule] }), { store }) ' +
          "from 'dpa-distributed-lock-cron/testing' works however AppModule imports it (overrideModule matches a bare import only).",
      );
    }
    // With EventEmitterModule in the app, every lock event is also `distributed-lock.<type>` there.
    const emitter = this.moduleRef && applicationEventEmitter(this.moduleRef);
    if (emitter) this.locks.onEvent(forwardTo(emitter));
    await this.locks.waitUntilConnected();
    // Redis is reachable and says the settings are wrong: stop here rather than run unlocked,
    // closing the connection first (Nest runs no shutdown hook for a failed bootstrap).
    try {
      this.locks.throwIfMisconfigured();
    } catch (error) {
      await this.locks.close();
      throw error;
    }
  }

  /**
   * Stops taking locks and waits (up to `shutdownTimeoutMs`) for guarded runs in progress to
   * finish, so Nest does not close the app under a running job. See `drain()`.
   */
  beforeApplicationShutdown(): Promise<void> {
    return this.locks.drain();
  }

  /** Closes the connection the module opened, once runs in progress are drained. */
  onApplicationShutdown(): Promise<void> {
    return this.locks.close();
  }
}
