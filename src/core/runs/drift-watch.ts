import type { Cluster, Redis } from 'ioredis';
import { describeError } from '../errors';
import {
  exchangePresence,
  fingerprintOf,
  type JobDrift,
  PRESENCE_INTERVAL_MS,
  presenceKey,
} from '../fleet/definition-drift';
import type { JobDeclaration } from '../fleet/fleet-records';
import type { EngineOptions } from '../options/resolve-options';
import { RepeatingTask } from './repeating-task';

/**
 * This replica's side of schedule drift (`fleet/definition-drift.ts`): publishes the fingerprint
 * of each job it declared every 3 s, and keeps, from the same call, which of its jobs another
 * definition owns now: those skip with reason `drift` until it does not. Learning it takes up to
 * one exchange (3 s) after a replica with another definition starts.
 */
export class DriftWatch {
  private readonly mine = new Map<string, string>();
  /** Definitions declared since the last exchange Redis acknowledged, to record as first declared. */
  private readonly unsent = new Map<string, string>();
  private notOwned = new Set<string>();
  private readonly exchanges: RepeatingTask;
  private closed = false;

  constructor(
    private readonly options: EngineOptions,
    private readonly client: Redis | Cluster,
    private readonly isReady: () => boolean,
    /** Has the connection load the presence script, so that even the first exchange is one EVALSHA. */
    private readonly loadScript: () => void,
  ) {
    const failed = (error: unknown): void =>
      options.logger.warn(`Publishing this replica's job definitions failed: ${describeError(error)}`);
    this.exchanges = new RepeatingTask(
      async () => this.learn(await this.send()),
      PRESENCE_INTERVAL_MS,
      isReady,
      failed,
    );
  }

  /** Starts publishing `jobs`' definitions (those with a fixed lock name). */
  declared(jobs: readonly JobDeclaration[]): void {
    for (const job of jobs) {
      if (job.key === null) continue;
      const fingerprint = fingerprintOf(job);
      this.mine.set(job.name, fingerprint);
      const { cron, timeZone, key, ttlMs } = job;
      // Stamped with Redis's time by the script: replicas' clocks do not decide which definition is newer.
      const definition = JSON.stringify({ firstDeclaredAt: '@now', cron, timeZone, key, ttlMs });
      this.unsent.set(`${job.name}|${fingerprint}`, definition);
    }
    if (this.mine.size === 0 || this.closed) return;
    this.loadScript();
    this.exchanges.start();
  }

  /** Whether another definition of `job` owns its occurrences now. */
  skips(job: string): boolean {
    return this.notOwned.has(job);
  }

  /** Stops publishing, and withdraws this replica's presence: a replica that shuts down is gone at once, not after PRESENCE_LIVE_S. */
  close(): void {
    this.closed = true;
    this.exchanges.stop();
    if (this.mine.size > 0 && this.isReady()) {
      this.client.hdel(presenceKey(this.options.keyPrefix), this.options.instanceId).catch(() => undefined);
    }
  }

  private async send(): Promise<JobDrift[]> {
    const declared = new Map(this.unsent);
    const { instanceId, replicaName: replica, keyPrefix } = this.options;
    const jobs = Object.fromEntries(this.mine);
    const drifts = await exchangePresence(this.client, keyPrefix, { instanceId, replica, jobs, declared });
    for (const key of declared.keys()) this.unsent.delete(key);
    return drifts;
  }

  /** Which jobs another definition owns now; each change is said once. */
  private learn(drifts: readonly JobDrift[]): void {
    const notOwned = new Set(
      drifts.filter(({ job, owner }) => this.mine.has(job) && this.mine.get(job) !== owner).map(({ job }) => job),
    );
    for (const job of notOwned) {
      if (this.notOwned.has(job)) continue;
      const owner = drifts.find((drift) => drift.job === job)!.definitions[0];
      this.options.logger.warn(
        `${job}: live replicas (${owner.replicas.join(', ')}) run a newer definition of it (${owner.cron ?? 'no schedule'}), ` +
          'which owns its occurrences: this replica skips it (reason drift) while they are live.',
      );
    }
    for (const job of this.notOwned) {
      if (!notOwned.has(job))
        this.options.logger.warn(`${job}: no live replica runs another definition of it: it runs here again.`);
    }
    this.notOwned = notOwned;
  }
}
