import { DISTRIBUTED_LOCK_OPTIONS, DISTRIBUTED_LOCK_STORE, EXPLICIT_OPTIONS } from '../distributed-lock.constants';
import { type DistributedLockTestingOptions, testingSetup } from './distributed-lock-testing.module';

/** What `withInMemoryLocks` needs of `@nestjs/testing`'s `TestingModuleBuilder` (not imported: a dev dependency of yours). */
export interface ProviderOverrides {
  overrideProvider(token: unknown): { useValue(value: unknown): ProviderOverrides };
}

/**
 * Makes the `DistributedLockModule` an application under test imports, however it imports it
 * (bare, `forRoot`, `forRootAsync` with `useFactory`, `useClass` or `useExisting`), take its locks
 * in an `InMemoryLockStore` instead of Redis: it overrides the module's options and store by their
 * tokens, so no Redis connection is opened and no options factory of the app is called.
 * (`overrideModule(DistributedLockModule)` matches a bare import only: a `forRoot` module is
 * another object.) Give several applications the same `store` to make them replicas.
 *
 * @example
 * const store = new InMemoryLockStore();
 * const app = await withInMemoryLocks(Test.createTestingModule({ imports: [AppModule] }), { store }).compile();
 */
export function withInMemoryLocks<B extends ProviderOverrides>(
  builder: B,
  options: DistributedLockTestingOptions = {},
): B {
  const { store, lockOptions } = testingSetup(options);
  builder.overrideProvider(EXPLICIT_OPTIONS).useValue({}); // forRoot / forRootAsync: their options are not used
  builder.overrideProvider(DISTRIBUTED_LOCK_OPTIONS).useValue(lockOptions);
  builder.overrideProvider(DISTRIBUTED_LOCK_STORE).useValue(store);
  return builder;
}
