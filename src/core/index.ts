// The framework-agnostic entry point (`dpa-distributed-lock-cron/core`): every name a user touches,
// listed one by one; nothing internal.
export { LockEngine, type LockedRun, type SkipReason } from './lock-engine';
export { JobDefinition, type JobDefinitionOptions } from './jobs/job-definition';
export { assertLockArguments, type AcquireOptions } from './locks/acquire-options';
export { LockHandle } from './locks/lock-handle';
export type { CatchUpPolicy, JobPolicies, RetryPolicy } from './policies/job-policies';
export type { DaylightSavingPolicy } from './jobs/daylight-saving';
export type { RunTrigger } from './policies/ledger';
export { currentLock } from './locks/lock-context';
export type { LockStore, ServerProbe } from './lock-store';
export {
  FleetInspector,
  MAX_CHECKED_OCCURRENCES,
  type HeldLock,
  type JobStatus,
  type MissedReport,
  type OverdueJob,
  type PausedJob,
  type RecordedRun,
} from './fleet/fleet-inspector';
export type { JobDefinitionSeen, JobDrift } from './fleet/definition-drift';
export type { FleetNotices } from './fleet/fleet-operations';
export { TriggerRefusedError, type TriggeredRun, type TriggerOptions } from './fleet/fleet-trigger';
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
  LockPauseEvent,
  LockEvent,
  LockEventListener,
  LockExtendedEvent,
  LockFailedEvent,
  LockLostEvent,
  LockOutageEvent,
  LockRanEvent,
  LockSkippedEvent,
} from './events/lock-events';
export { cronTick, CronSchedule, EARLY_FIRING_TOLERANCE_MS, type CronZone } from './jobs/cron-schedule';
export { SYSTEM_CLOCK, type EngineClock } from './clock';
export type { DistributedLockOptions, FailMode, RedisAddress, RedisConnectionOptions } from './options/lock-options';
export type { LockLogger } from './logger';
export { ENVIRONMENT_VARIABLES, lockOptionsFromEnvironment } from './options/environment';
export {
  ComputedLockNameError,
  ConflictingLockOptionsError,
  DistributedLockConfigError,
  DistributedLockError,
  InvalidLockArgumentError,
  JobPolicyError,
  LockLostError,
  LockServiceMissingError,
  UnknownJobError,
  UnscheduledJobError,
} from './errors';
export { MAX_TIMER_MS } from './validation';
