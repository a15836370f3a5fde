// Compiled by `npm run typecheck` (part of `npm test`): the injected service's type is exactly its
// documented members, so an engine internal cannot leak into it again unnoticed.
import type { DistributedLockService } from '../../src';

declare const service: DistributedLockService;

// @ts-expect-error runGuarded was the engine's internal entry for the decorator; it is not the service's.
void service.runGuarded;
// @ts-expect-error adoptJobs was how the decorator handed jobs to the service; jobs are found by discovery now.
void service.adoptJobs;
// @ts-expect-error the Nest lifecycle hooks belong to an internal provider, not to the injected service.
void service.onModuleInit;

/** The members docs/api.md's `DistributedLockService` table documents. */
type Documented =
  | 'acquireLock'
  | 'releaseLock'
  | 'extendLock'
  | 'holdsLock'
  | 'fencingToken'
  | 'acquire'
  | 'withLock'
  | 'runJob'
  | 'runDefinedJob'
  | 'isConnected'
  | 'waitUntilConnected'
  | 'throwIfMisconfigured'
  | 'onEvent'
  | 'client'
  | 'fleet'
  | 'overdueJobs'
  | 'fleetNotices'
  | 'declareJobs'
  | 'probe'
  | 'drain'
  | 'close';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const serviceHasOnlyDocumentedMembers: Same<keyof DistributedLockService, Documented> = true;

// runJob keeps its signature: (jobName, key, ttlMs, fn, options?) => Promise<result | undefined>.
export const runJobKeepsItsSignature: Same<
  Parameters<DistributedLockService['runJob']>,
  [jobName: string, key: string, ttlMs: number, fn: () => unknown, options?: import('../../src').AcquireOptions]
> = true;
