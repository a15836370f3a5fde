export * from './core';
export { distributedLockConfig } from './distributed-lock.config';
export { DISTRIBUTED_LOCK_CONFIG_NAMESPACE } from './distributed-lock.constants';
export {
  DistributedLock,
  type DistributedLockDecoratorOptions,
  type LockKeyFactory,
} from './distributed-lock.decorator';
export {
  DistributedLockModule,
  type DistributedLockAsyncOptions,
  type DistributedLockOptionsFactory,
} from './distributed-lock.module';
export { DistributedLockService } from './distributed-lock.service';
export { LOCK_EVENT_NAMESPACE } from './event-emitter-bridge';
