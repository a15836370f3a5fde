export { DistributedLockTestingModule, type DistributedLockTestingOptions } from './distributed-lock-testing.module';
export { InMemoryLockStore } from './in-memory-lock-store';
export type { InMemoryLockStoreOptions, RecordedLockEvent } from './in-memory-records';
export { withInMemoryLocks, type ProviderOverrides } from './with-in-memory-locks';
export { FleetSimulator, type FleetSimulatorOptions, type ReplicaBuilder } from './fleet-simulator';
export { SimulatedReplica } from './simulated-replica';
export { OccurrenceNotOnceError, type OccurrenceReport, type SimulatedRun } from './occurrence-check';
