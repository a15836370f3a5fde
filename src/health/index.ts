export {
  DEFAULT_MAX_CLOCK_OFFSET_MS,
  DistributedLockHealthIndicator,
  type DistributedLockHealthDetails,
  type DistributedLockHealthOptions,
  type ServerHealth,
} from './distributed-lock-health.indicator';
