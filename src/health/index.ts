export {
  DEFAULT_MAX_CLOCK_OFFSET_MS,
  DEFAULT_OVERDUE_GRACE_MS,
  DistributedLockHealthIndicator,
  type DistributedLockHealthDetails,
  type DistributedLockHealthOptions,
  type OverdueJobHealth,
  type PausedJobHealth,
  type ServerHealth,
} from './distributed-lock-health.indicator';
