import type { DynamicModule } from '@nestjs/common';
import { lockOptionsFromEnvironment } from './core/options/environment';
import type { DistributedLockOptions } from './core/options/lock-options';
import { DISTRIBUTED_LOCK_CONFIG_NAMESPACE, DISTRIBUTED_LOCK_CONFIG_TOKEN } from './distributed-lock.constants';

/** A config factory as `registerAs` returns it: `KEY` is its provider token. */
type DistributedLockConfigFactory = (() => DistributedLockOptions) & {
  /** `CONFIGURATION(distributedLock)`, for `@Inject(distributedLockConfig.KEY)`. */
  readonly KEY: string;
  /** `forRootAsync`/`forFeature`-style options that read the namespace; needs `@nestjs/config`. */
  asProvider(): {
    imports: [DynamicModule];
    useFactory: (config: DistributedLockOptions) => DistributedLockOptions;
    inject: [string];
  };
};

/**
 * The `REDIS_*` variables as a `@nestjs/config` namespace (what `registerAs('distributedLock', …)`
 * makes). Load it in `ConfigModule.forRoot({ load: [distributedLockConfig] })`; a bare
 * `DistributedLockModule` import then takes its settings from it. Bad values fail when
 * ConfigModule loads, naming the variable. Importing this package does not load `@nestjs/config`.
 *
 * @example
 * ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] }),
 * DistributedLockModule,
 */
export const distributedLockConfig = registerAsNamespace(() => lockOptionsFromEnvironment());

/**
 * Gives the factory the properties `registerAs` of `@nestjs/config` 3, 4 and 12 defines (the same
 * keys, values and flags in all three), without loading it: it is an optional peer, and version 12 is
 * ESM-only, which Jest's CommonJS loader cannot require.
 */
function registerAsNamespace(factory: () => DistributedLockOptions): DistributedLockConfigFactory {
  const define = (key: string, value: unknown): void => {
    Object.defineProperty(factory, key, { value, configurable: false, enumerable: false, writable: false });
  };
  // ConfigModule stores the factory's result under this namespace (its PARTIAL_CONFIGURATION_KEY)...
  define('PARTIAL_CONFIGURATION_KEY', DISTRIBUTED_LOCK_CONFIG_NAMESPACE);
  // ...and provides it under KEY (its PARTIAL_CONFIGURATION_PROPNAME, `getConfigToken(namespace)`).
  define('KEY', DISTRIBUTED_LOCK_CONFIG_TOKEN);
  define('asProvider', () => ({
    imports: [loadConfigModule().forFeature(factory)],
    useFactory: (config: DistributedLockOptions) => config,
    inject: [DISTRIBUTED_LOCK_CONFIG_TOKEN],
  }));
  return factory as DistributedLockConfigFactory;
}

function loadConfigModule(): typeof import('@nestjs/config').ConfigModule {
  // Only asProvider() needs ConfigModule itself, and only an app that uses @nestjs/config calls it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('@nestjs/config') as typeof import('@nestjs/config')).ConfigModule;
}
