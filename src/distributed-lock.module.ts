import {
  type DynamicModule,
  Global,
  type InjectionToken,
  Module,
  type ModuleMetadata,
  type OptionalFactoryDependency,
} from '@nestjs/common';
import { lockOptionsFromEnvironment } from './core/environment';
import type { DistributedLockOptions } from './core/lock-options';
import {
  DISTRIBUTED_LOCK_CONFIG_TOKEN,
  DISTRIBUTED_LOCK_OPTIONS,
  EXPLICIT_OPTIONS,
} from './distributed-lock.constants';
import { DistributedLockService } from './distributed-lock.service';

/** `forRootAsync` options, in the usual Nest shape. */
export interface DistributedLockAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory: (...args: never[]) => DistributedLockOptions | Promise<DistributedLockOptions>;
  inject?: (InjectionToken | OptionalFactoryDependency)[];
}

/**
 * Picks the options in order of precedence: `forRoot`/`forRootAsync`, then the `distributedLock`
 * namespace of `@nestjs/config`, then `process.env`.
 */
const optionsProvider = {
  provide: DISTRIBUTED_LOCK_OPTIONS,
  useFactory: (explicit?: DistributedLockOptions, fromConfig?: DistributedLockOptions): DistributedLockOptions =>
    explicit ?? fromConfig ?? lockOptionsFromEnvironment(),
  inject: [
    { token: EXPLICIT_OPTIONS, optional: true },
    { token: DISTRIBUTED_LOCK_CONFIG_TOKEN, optional: true },
  ],
};

/**
 * Provides `DistributedLockService` to the whole application (the module is global), which
 * `@DistributedLock` needs. Import it bare to configure it from `REDIS_*` variables, or use
 * `forRoot` / `forRootAsync`.
 *
 * @example
 * imports: [ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] }), DistributedLockModule]
 */
@Global()
@Module({
  providers: [optionsProvider, DistributedLockService],
  exports: [DistributedLockService],
})
export class DistributedLockModule {
  /**
   * Configures the module with these options only (no `REDIS_*` variables; spread
   * `lockOptionsFromEnvironment()` into them to combine both).
   *
   * @example
   * DistributedLockModule.forRoot({ url: 'redis://redis:6379', keyPrefix: 'billing:', failMode: 'closed' })
   */
  static forRoot(options: DistributedLockOptions = {}): DynamicModule {
    return {
      module: DistributedLockModule,
      providers: [{ provide: EXPLICIT_OPTIONS, useValue: options }],
    };
  }

  /**
   * Configures the module from other providers, e.g. `ConfigService`.
   *
   * @example
   * DistributedLockModule.forRootAsync({
   *   inject: [ConfigService],
   *   useFactory: (config: ConfigService) => ({ url: config.getOrThrow('REDIS_URL') }),
   * })
   */
  static forRootAsync(options: DistributedLockAsyncOptions): DynamicModule {
    return {
      module: DistributedLockModule,
      imports: options.imports ?? [],
      providers: [
        {
          provide: EXPLICIT_OPTIONS,
          useFactory: options.useFactory as (...args: unknown[]) => DistributedLockOptions,
          inject: options.inject ?? [],
        },
      ],
    };
  }
}
