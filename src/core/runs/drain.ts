import { monotonicNow } from '../clock';
import { LockLostError } from '../errors';
import type { LockEvents } from '../events/lock-events';
import type { FleetOperations } from '../fleet/fleet-operations';
import type { LockAcquirer } from '../locks/lock-acquirer';
import { logInfo } from '../logger';
import type { ResolvedLockOptions } from '../options/resolve-options';
import type { LockRegistry } from './lock-registry';

/** What draining needs of the engine. */
export interface DrainParts {
  readonly options: ResolvedLockOptions;
  readonly acquirer: LockAcquirer;
  readonly registry: LockRegistry;
  readonly events: LockEvents;
  readonly operations: FleetOperations;
}

/**
 * Closing's first half: no acquisition is granted from now on; runs in progress keep their lock,
 * still extended, until they settle or `shutdownTimeoutMs` passes. Runs still going then are
 * abandoned (their signal aborted, their lock left to expire by TTL, never deleted), recorded and
 * reported; what was waited for and what was left is logged.
 */
export async function drainRuns({ options, acquirer, registry, events, operations }: DrainParts): Promise<void> {
  acquirer.stopGranting();
  const started = monotonicNow();
  const waitedFor = registry.runningKeys();
  const left = await registry.untilIdle(options.shutdownTimeoutMs);
  const ms = Math.round(monotonicNow() - started);
  const { shutdownTimeoutMs, logger } = options;
  const reason = `the application shut down while it was still running (shutdownTimeoutMs ${shutdownTimeoutMs}); it is no longer extended and expires by its TTL`;
  for (const lock of left) {
    lock.abandon(reason);
    if (events.active) {
      const error = new LockLostError(lock.key, reason);
      events.emit({ type: 'lost', key: lock.key, job: lock.job, tick: lock.tick, error });
    }
    void acquirer.settleClaim(lock, 'abandoned');
    if (operations.records(lock)) {
      const runningMs = lock.elapsedMs();
      void acquirer.recordRun(operations.runRecord(lock, 'abandoned', runningMs, reason));
    }
  }
  acquirer.renewals.disarmIfEmpty(); // every handle that renewed is released or abandoned by now
  const finished = waitedFor.length - left.length;
  if (events.active) {
    events.emit({ type: 'drained', finished, abandoned: left.map((lock) => lock.key), waitedMs: ms });
  }
  if (finished > 0) logInfo(logger, `Shutdown waited ${ms} ms for ${finished} run(s) to finish.`);
  if (left.length > 0) {
    logger.warn(
      `Shutdown left ${left.length} run(s) still going after ${ms} ms: ${left.map((lock) => `"${lock.key}"`).join(', ')}. ` +
        'Their signals are aborted; their locks are no longer extended and expire by their TTL.',
    );
  }
}
