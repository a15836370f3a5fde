import { lockOptionsFromEnvironment } from './core/environment';
import type { DistributedLockOptions } from './core/lock-options';
import { DISTRIBUTED_LOCK_CONFIG_NAMESPACE } from './distributed-lock.constants';

/** A config factory; with `@nestjs/config` installed it also carries `KEY`, its provider token. */
type ConfigFactory = (() => DistributedLockOptions) & { KEY?: string | symbol };

/**
 * The `REDIS_*` variables as a `@nestjs/config` namespace (`registerAs('distributedLock', …)`).
 * Load it in `ConfigModule.forRoot({ load: [distributedLockConfig] })`; a bare
 * `DistributedLockModule` import then takes its settings from it. Bad values fail when
 * ConfigModule loads, naming the variable.
 *
 * @example
 * ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] }),
 * DistributedLockModule,
 */
export const distributedLockConfig: ConfigFactory = registerWithConfigModule(() => lockOptionsFromEnvironment());

function registerWithConfigModule(factory: () => DistributedLockOptions): ConfigFactory {
  let registerAs: typeof import('@nestjs/config').registerAs;
  try {
    // Loaded lazily: @nestjs/config is an optional peer, and apps without it still import this package.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ({ registerAs } = require('@nestjs/config') as typeof import('@nestjs/config'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return factory;
    throw error;
  }
  return registerAs(DISTRIBUTED_LOCK_CONFIG_NAMESPACE, factory);
}
