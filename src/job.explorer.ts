import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { JobDeclaration } from './core/fleet/fleet-records';
import { cronDeclarationOf } from './cron-metadata';
import { GUARDED_JOB, type GuardedJobMetadata } from './distributed-lock.decorator';
import { DistributedLockService } from './distributed-lock.service';

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
  ) {}

  onApplicationBootstrap(): Promise<void> {
    return this.locks.declareJobs(this.guardedJobs());
  }

  /** The jobs of the guarded methods of this application's instances, once each. */
  guardedJobs(): JobDeclaration[] {
    const found = new Map<string, JobDeclaration>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // A request-scoped instance exists per request: none is running its jobs at startup.
      const instance: unknown = wrapper.instance;
      if (!wrapper.isDependencyTreeStatic() || !instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown> | null;
      if (!prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName];
        if (typeof method !== 'function') continue;
        const guarded = Reflect.getOwnMetadata(GUARDED_JOB, method) as GuardedJobMetadata | undefined;
        if (!guarded || found.has(guarded.job.name)) continue;
        const { name, key, ttlMs } = guarded.job;
        const declaration = cronDeclarationOf(name, key ?? null, ttlMs, method);
        if (declaration) found.set(name, declaration);
      }
    }
    return [...found.values()];
  }
}
