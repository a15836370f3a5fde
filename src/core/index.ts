export { LockEngine, assertLockArguments, type AcquireOptions, type LockedRun } from './lock-engine';
export { LockHandle } from './lock-handle';
export { currentLock } from './lock-context';
export { cronTick } from './cron-tick';
export {
  DEFAULT_LOCK_OPTIONS,
  resolveLockOptions,
  type DistributedLockOptions,
  type FailMode,
  type LockLogger,
  type RedisConnectionOptions,
  type ResolvedLockOptions,
} from './lock-options';
export { ENVIRONMENT_VARIABLES, lockOptionsFromEnvironment } from './environment';
export {
  ConflictingLockOptionsError,
  DistributedLockConfigError,
  DistributedLockError,
  InvalidLockArgumentError,
  LockLostError,
  LockServiceMissingError,
} from './errors';
export { MAX_TIMER_MS } from './validation';
