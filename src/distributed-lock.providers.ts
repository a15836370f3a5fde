import type { Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { DistributedLockLifecycle } from './distributed-lock.lifecycle';
import { DistributedLockService } from './distributed-lock.service';
import { JobExplorer } from './job.explorer';

/** What the module and the testing module both provide around the options they are given. */
export const LOCK_PROVIDERS: Provider[] = [DistributedLockService, DistributedLockLifecycle, JobExplorer];

/** What those providers need: `DiscoveryService`, for the explorer. */
export const LOCK_IMPORTS = [DiscoveryModule];
