import { describeError } from '../errors';
import type { LockEvents } from '../events/lock-events';
import { MAX_PAUSE_NOTE_LENGTH, type PauseRecord } from '../fleet/fleet-records';
import type { JobDefinition } from '../jobs/job-definition';
import { jobFailuresField, lockKeyOf, pausedKeyOf } from '../keys';
import type { LockStore } from '../lock-store';
import type { EngineOptions } from '../options/resolve-options';

/**
 * `pauseAfterFailures`: counts each occurrence's end into its job's failed occurrences in a row
 * (`failure-streak.ts`), in Redis so every replica counts into one; the count that reaches the
 * limit pauses the job fleet-wide, with a note naming the last error, said in an error line and
 * as a `paused` event on the replica that counted it. An end while Redis is unreachable is not counted.
 */
export class PauseAfterFailures {
  constructor(
    private readonly options: EngineOptions,
    private readonly store: LockStore,
    private readonly events: LockEvents,
  ) {}

  count(
    job: JobDefinition,
    lockName: string,
    state: { readonly stateKey: string; readonly keepMs: number },
    end: { readonly tick: number; readonly failed: boolean; readonly error: unknown },
  ): void {
    const limit = job.policies.pauseAfterFailures;
    if (limit === undefined) return;
    const { name } = job;
    const { tick, failed } = end;
    const why = `${limit} occurrence(s) in a row failed, the last (${new Date(tick).toISOString()}) with: ${describeError(end.error)}`;
    const pause: PauseRecord = {
      by: 'pauseAfterFailures',
      at: this.options.clock.now(),
      note: why.slice(0, MAX_PAUSE_NOTE_LENGTH),
      afterFailures: limit,
    };
    const pauseKey = pausedKeyOf(lockKeyOf(this.options.keyPrefix, lockName));
    const { stateKey, keepMs } = state;
    const write = { stateKey, pauseKey, field: jobFailuresField(name), job: name, tick, failed, limit, keepMs };
    void this.store.countFailures({ ...write, pauseRecord: JSON.stringify(pause) }).then((streak) => {
      if (!streak?.paused) return;
      this.options.logger.error(
        `${name} is paused on every replica: ${why}. Resume it once fixed (CLI: resume ${name}).`,
      );
      if (this.events.active) this.events.emit({ type: 'paused', job: name, key: lockName, pause });
    });
  }
}
