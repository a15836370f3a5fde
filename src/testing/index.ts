export { DistributedLockTestingModule, type DistributedLockTestingOptions } from './distributed-lock-testing.module';
export { InMemoryLockStore, type InMemoryLockStoreOptions, type RecordedLockEvent } from './in-memory-lock-store';
export { withInMemoryLocks, type ProviderOverrides } from './with-in-memory-locks';
