// The operators' dashboard (`dpa-distributed-lock-cron/dashboard`): a Nest module that mounts it in
// the app, and the framework-agnostic handler the CLI's standalone dashboard serves.
export {
  DistributedLockDashboardModule,
  type DistributedLockDashboardOptions,
} from './distributed-lock-dashboard.module';
export {
  DASHBOARD_ACTIONS,
  DashboardHandler,
  type DashboardAction,
  type DashboardAuthorize,
  type DashboardHandlerOptions,
  type DashboardRequest,
  type DashboardResponse,
} from './dashboard-handler';
export type { DashboardJob, DashboardReplica, DashboardSnapshot } from './dashboard-snapshot';
