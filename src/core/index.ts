export { LockEngine, type LockedRun, type SkipReason } from './lock-engine';
export { assertLockArguments, type AcquireOptions } from './acquire-options';
export { LockHandle } from './lock-handle';
export type { ServerProbe } from './lock-store';
export {
  FleetInspector,
  MAX_CHECKED_OCCURRENCES,
  type HeldLock,
  type JobStatus,
  type MissedReport,
  type OverdueJob,
  type RecordedRun,
} from './fleet/fleet-inspector';
export {
  type JobDeclaration,
  type JobRecord,
  type PauseRecord,
  type RunRecord,
  type RunRecordOutcome,
} from './fleet/fleet-records';
export type {
  OpenTelemetryMeterProvider,
  OpenTelemetryOptions,
  OpenTelemetryTracerProvider,
} from './telemetry/open-telemetry-options';
export type {
  LockAcquiredEvent,
  LockDrainedEvent,
  LockEvent,
  LockEventListener,
  LockExtendedEvent,
  LockLostEvent,
  LockOutageEvent,
  LockRanEvent,
  LockSkippedEvent,
} from './lock-events';
export { currentLock } from './lock-context';
export { cronTick, CronSchedule, EARLY_FIRING_TOLERANCE_MS, type CronZone } from './cron-schedule';
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
  ComputedLockNameError,
  ConflictingLockOptionsError,
  DistributedLockConfigError,
  DistributedLockError,
  InvalidLockArgumentError,
  LockLostError,
  LockServiceMissingError,
  UnknownJobError,
  UnscheduledJobError,
} from './errors';
export { MAX_TIMER_MS } from './validation';
