import { LockEvents } from './events/lock-events';
import { FleetOperations } from './fleet/fleet-operations';
import { PRESENCE } from './fleet/definition-drift';
import type { LockStore } from './lock-store';
import { LockAcquirer } from './locks/lock-acquirer';
import type { DistributedLockOptions } from './options/lock-options';
import { settingsInUrl } from './options/redis-target';
import { type EngineOptions, resolveLockOptions } from './options/resolve-options';
import { createLockStore } from './redis/create-store';
import { nextInstanceId } from './keys';
import { GuardedRuns } from './runs/guarded-runs';
import { JobRuns } from './runs/job-runs';
import { LockRegistry } from './runs/lock-registry';
import { TriggerListener } from './runs/trigger-listener';
import { DriftWatch } from './runs/drift-watch';
import { RedisStore } from './redis/redis-store';
import { createLockTelemetry, type LockTelemetry } from './telemetry/open-telemetry';

/** What a `LockEngine` is made of, wired once: each part is given only the parts it calls. */
export interface EngineParts {
  readonly options: EngineOptions;
  readonly events: LockEvents;
  /** Metrics and spans through OpenTelemetry, when `openTelemetry` is on. */
  readonly telemetry: LockTelemetry | undefined;
  readonly store: LockStore;
  readonly registry: LockRegistry;
  readonly acquirer: LockAcquirer;
  /** Job declarations, run records and the fleet's records, for the operators. */
  readonly operations: FleetOperations;
  readonly runs: GuardedRuns;
  /** Defined jobs' runs, scheduled and owed by their policies. */
  readonly jobs: JobRuns;
  /** Which connection settings came in a URL: a refusal of them names the URL. */
  readonly inUrl: { readonly credentials: boolean; readonly db: boolean };
}

/** Resolves the options and builds the engine's parts, opening the connections a Redis store needs. */
export function assembleEngine(given: DistributedLockOptions, store: LockStore | undefined): EngineParts {
  // Resolving options (the environment reader does too) takes no instance id: an engine does.
  const options: EngineOptions = { ...resolveLockOptions(given), instanceId: nextInstanceId() };
  const { target, acquireTimeoutMs: timeoutMs, logger, waitForReplicas, onEvent } = options;
  const whileDown = options.failMode === 'open' ? 'guarded jobs run without a lock' : 'guarded jobs are skipped';
  const events = new LockEvents(logger);
  if (onEvent) events.subscribe(onEvent);
  const registry = new LockRegistry();
  // Before the store: a missing @opentelemetry/api throws here, with no connection opened yet.
  const telemetry = options.openTelemetry
    ? createLockTelemetry(options.openTelemetry, { heldLocks: () => registry.heldCount(), logger })
    : undefined;
  if (telemetry) events.subscribe(telemetry.listener);
  store ??= createLockStore(target, { timeoutMs, logger, whileDown, waitForReplicas, events });
  const acquirer = new LockAcquirer(options, store, registry, events);
  const redisStore = store instanceof RedisStore ? store : undefined;
  const drift =
    options.operations && redisStore
      ? new DriftWatch(
          options,
          redisStore.client,
          () => redisStore.isReady(),
          () => redisStore.loadScripts([PRESENCE]),
        )
      : undefined;
  const operations = new FleetOperations(options, store, events, drift);
  const runs = new GuardedRuns(acquirer, registry, events, telemetry?.tracer, operations);
  const skips = (job: string): boolean => drift?.skips(job) ?? false;
  const jobs = new JobRuns(options, store, runs, registry, events, triggerListener(options, store, runs, skips), drift);
  const inUrl = settingsInUrl(given);
  return { options, events, telemetry, store, registry, acquirer, operations, runs, jobs, inUrl };
}

/** The replica side of manual triggers, with `manualTriggers` on a single Redis or Cluster. */
function triggerListener(
  options: EngineOptions,
  store: LockStore,
  runs: GuardedRuns,
  skips: (job: string) => boolean,
): TriggerListener | undefined {
  if (!options.manualTriggers) return undefined;
  if (store instanceof RedisStore)
    return new TriggerListener(options, store.client, () => store.isReady(), runs, skips);
  options.logger.warn(
    `manualTriggers needs a single Redis or Cluster; locks live in ${store.label}: no trigger is taken.`,
  );
  return undefined;
}
