import { type DynamicModule, Module } from '@nestjs/common';
import type { LockEventListener } from '../core/events/lock-events';
import type { DistributedLockOptions } from '../core/options/lock-options';
import {
  DISTRIBUTED_LOCK_OPTIONS,
  DISTRIBUTED_LOCK_STORE,
  IN_MEMORY_STORE_IN_APP,
} from '../distributed-lock.constants';
import { LOCK_IMPORTS, LOCK_PROVIDERS } from '../distributed-lock.providers';
import { DistributedLockService } from '../distributed-lock.service';
import { InMemoryLockStore } from './in-memory-lock-store';

/** The engine options a test may set; where Redis is does not apply. */
export type DistributedLockTestingOptions = Pick<
  DistributedLockOptions,
  | 'keyPrefix'
  | 'failMode'
  | 'fencing'
  | 'shutdownTimeoutMs'
  | 'tickAheadLimitMs'
  | 'stateRetentionMs'
  | 'logger'
  | 'clock'
> & {
  /** The store to keep locks in; give the same one to several application contexts to make them replicas. @default a new one */
  store?: InMemoryLockStore;
  /** This application's name in the store's recorded events. @default 'replica-1', 'replica-2', … in creation order */
  replica?: string;
  /** Also called with every event, like the module's `onEvent`. */
  onEvent?: LockEventListener;
};

let replicasNamed = 0;

/** The store and the service options one test application gets from `options`. */
export function testingSetup(options: DistributedLockTestingOptions): {
  store: InMemoryLockStore;
  lockOptions: DistributedLockOptions;
} {
  const { store = new InMemoryLockStore(), replica = `replica-${++replicasNamed}`, onEvent, ...engine } = options;
  const lockOptions: DistributedLockOptions = {
    // A run a fake clock never finishes must not hold up `app.close()`: closing abandons it at once.
    shutdownTimeoutMs: 0,
    ...engine,
    onEvent: (event) => {
      store.record(replica, event);
      onEvent?.(event);
    },
  };
  return { store, lockOptions };
}

/**
 * Replaces `DistributedLockModule` in tests: the real `DistributedLockService` (and so the real
 * `@DistributedLock` behaviour) over an `InMemoryLockStore` instead of Redis. The store is also
 * provided, for `moduleRef.get(InMemoryLockStore)`. Unlike the module, `shutdownTimeoutMs` defaults
 * to 0: closing does not wait for runs in progress (under fake timers they may never end).
 *
 * @example
 * const store = new InMemoryLockStore();
 * const moduleRef = await Test.createTestingModule({
 *   imports: [ScheduleModule.forRoot(), DistributedLockTestingModule.forRoot({ store })],
 *   providers: [ReportJobs],
 * }).compile();
 */
@Module({})
export class DistributedLockTestingModule {
  static forRoot(options: DistributedLockTestingOptions = {}): DynamicModule {
    const { store, lockOptions } = testingSetup(options);
    return {
      module: DistributedLockTestingModule,
      global: true,
      imports: LOCK_IMPORTS,
      providers: [
        { provide: DISTRIBUTED_LOCK_OPTIONS, useValue: lockOptions },
        { provide: DISTRIBUTED_LOCK_STORE, useValue: store },
        { provide: InMemoryLockStore, useValue: store },
        // Tells a real DistributedLockModule booting in the same application that it must not.
        { provide: IN_MEMORY_STORE_IN_APP, useValue: true },
        ...LOCK_PROVIDERS,
      ],
      exports: [DistributedLockService, InMemoryLockStore, IN_MEMORY_STORE_IN_APP],
    };
  }
}
