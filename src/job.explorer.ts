import { Inject, Injectable, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { JobDeclaration } from './core/fleet/fleet-records';
import { policiesRecord } from './core/policies/job-policies';
import type { LockStore } from './core/lock-store';
import type { DistributedLockOptions } from './core/options/lock-options';
import { DISTRIBUTED_LOCK_OPTIONS, DISTRIBUTED_LOCK_STORE } from './distributed-lock.constants';
import { cronDeclarationOf } from './cron-metadata';
import { GUARDED_JOB, type GuardedJobMetadata } from './distributed-lock.decorator';
import { DistributedLockService, engineOf } from './distributed-lock.service';
import { moduleLogger } from './lock-logger';

/**
 * Finds the `@DistributedLock` methods of the providers and controllers this application created
 * and declares their jobs for the operations tools once the application has started: the jobs it
 * really runs, not every decorated class the process loaded, nor a disabled `@Cron`.
 */
@Injectable()
export class JobExplorer implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly locks: DistributedLockService,
    @Inject(DISTRIBUTED_LOCK_OPTIONS) private readonly options: DistributedLockOptions,
    @Optional() @Inject(DISTRIBUTED_LOCK_STORE) private readonly store?: LockStore | null,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const guarded = this.guardedMethods();
    const jobs = guarded.flatMap(({ declaration }) => (declaration ? [declaration] : []));
    this.warnIfNothingSchedules(jobs);
    this.warnOfSharedKeys(guarded);
    try {
      this.adoptPolicies(guarded);
    } catch (error) {
      // Nest runs no shutdown hook for a failed bootstrap: close the connection here.
      await this.locks.close();
      throw error;
    }
    return this.locks.declareJobs(jobs);
  }

  /**
   * Starts the policies (`catchUp`, `retry`) of the jobs that have them, on the instance Nest
   * created; a policy that cannot keep its promise here stops the boot with the reason.
   */
  private adoptPolicies(guarded: readonly GuardedMethod[]): void {
    const engine = engineOf(this.locks);
    for (const { metadata, declaration, instance } of guarded) {
      if (declaration === undefined) continue; // a disabled @Cron: nothing is scheduled
      engine.startPolicies(metadata.job, () => metadata.handler.call(instance));
    }
  }

  /**
   * Two jobs under one fixed key never run at once, and one of them may rarely get to: said at
   * startup, unless every job of that key shares it deliberately (`sharedKey`).
   */
  private warnOfSharedKeys(guarded: readonly GuardedMethod[]): void {
    const byKey = new Map<string, GuardedMethod[]>();
    for (const method of guarded) {
      if (method.metadata.job.key === undefined) continue;
      byKey.set(method.metadata.job.key, [...(byKey.get(method.metadata.job.key) ?? []), method]);
    }
    const logger = moduleLogger(this.options);
    for (const [key, methods] of byKey) {
      if (methods.length < 2 || methods.every((method) => method.metadata.sharedKey) || !logger) continue;
      logger.warn(
        `${methods.map((method) => method.metadata.job.name).join(' and ')} take the same lock "${key}": they never ` +
          'run at once, and while one holds it the others skip (one may rarely run). Give each job a key of its ' +
          'own, or set sharedKey: true on each of them if that is the intent.',
      );
    }
  }

  /**
   * `@Cron` jobs in an app without `ScheduleModule` never fire: nothing else would say so. Not
   * over the in-memory store, where a test calls the methods itself.
   */
  private warnIfNothingSchedules(jobs: readonly JobDeclaration[]): void {
    const scheduled = jobs.filter((job) => job.cron !== null).map((job) => job.name);
    if (scheduled.length === 0 || this.store) return;
    if (this.discovery.getProviders().some((wrapper) => wrapper.name === 'SchedulerRegistry')) return;
    const logger = moduleLogger(this.options);
    if (!logger) return;
    logger.warn(
      `${scheduled.join(', ')} ${scheduled.length === 1 ? 'has' : 'have'} @Cron and @DistributedLock, but this ` +
        'application does not import ScheduleModule (ScheduleModule.forRoot() from @nestjs/schedule): no @Cron job ' +
        'will fire. Import it in the root module.',
    );
  }

  /** The guarded methods of this application's instances, once per job. */
  private guardedMethods(): GuardedMethod[] {
    const found = new Map<string, GuardedMethod>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // A request-scoped instance exists per request: none is running its jobs at startup.
      const instance: unknown = wrapper.instance;
      if (!wrapper.isDependencyTreeStatic() || !instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      if (!prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName];
        if (typeof method !== 'function') continue;
        const metadata = Reflect.getOwnMetadata(GUARDED_JOB, method) as GuardedJobMetadata | undefined;
        if (!metadata || found.has(metadata.job.name)) continue;
        const { name, key, ttlMs } = metadata.job;
        const declared = cronDeclarationOf(name, key ?? null, ttlMs, method);
        // A job with policies says so, for `missed`; one without declares exactly what it always did.
        const policies = policiesRecord(metadata.job.policies);
        const declaration = declared && policies ? { ...declared, policies } : declared;
        found.set(name, { metadata, declaration, instance });
      }
    }
    return [...found.values()];
  }
}

/** A guarded method found at startup: its job, and what it is declared as (nothing for a disabled `@Cron`). */
interface GuardedMethod {
  readonly metadata: GuardedJobMetadata;
  readonly declaration: JobDeclaration | undefined;
  /** The instance Nest created, whose method the job calls. */
  readonly instance: object;
}
