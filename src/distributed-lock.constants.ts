/** Namespace of `distributedLockConfig` in `@nestjs/config` (`configService.get('distributedLock')`). */
export const DISTRIBUTED_LOCK_CONFIG_NAMESPACE = 'distributedLock';

/** The provider token `@nestjs/config` gives that namespace (its `getConfigToken()` format). */
export const DISTRIBUTED_LOCK_CONFIG_TOKEN = `CONFIGURATION(${DISTRIBUTED_LOCK_CONFIG_NAMESPACE})`;

/** Options passed to `forRoot` / produced by `forRootAsync`. Internal. */
export const EXPLICIT_OPTIONS = 'DISTRIBUTED_LOCK:EXPLICIT_OPTIONS';

/** The options the service is built from, whichever source they came from. Internal. */
export const DISTRIBUTED_LOCK_OPTIONS = 'DISTRIBUTED_LOCK:OPTIONS';

/** Where the service keeps its locks instead of Redis (the testing module's in-memory store). Internal. */
export const DISTRIBUTED_LOCK_STORE = 'DISTRIBUTED_LOCK:STORE';

/** Provided by the testing module: an application that has it must not take locks in Redis. Internal. */
export const IN_MEMORY_STORE_IN_APP = 'DISTRIBUTED_LOCK:IN_MEMORY_STORE_IN_APP';
