import {
  type DynamicModule,
  Global,
  type InjectionToken,
  Module,
  type ModuleMetadata,
  type OptionalFactoryDependency,
  type Provider,
  type Type,
} from '@nestjs/common';
import { lockOptionsFromEnvironment } from './core/options/environment';
import { DistributedLockConfigError } from './core/errors';
import type { DistributedLockOptions } from './core/options/lock-options';
import {
  DISTRIBUTED_LOCK_CONFIG_TOKEN,
  DISTRIBUTED_LOCK_OPTIONS,
  DISTRIBUTED_LOCK_STORE,
  EXPLICIT_OPTIONS,
} from './distributed-lock.constants';
import { LOCK_IMPORTS, LOCK_PROVIDERS } from './distributed-lock.providers';
import { DistributedLockService } from './distributed-lock.service';

/**
 * A class that builds the module's options, for `forRootAsync({ useClass })` or `{ useExisting }`.
 *
 * @example
 * @Injectable()
 * class LockOptions implements DistributedLockOptionsFactory {
 *   constructor(private readonly config: ConfigService) {}
 *   createDistributedLockOptions(): DistributedLockOptions {
 *     return { url: this.config.getOrThrow('REDIS_URL'), keyPrefix: 'billing:' };
 *   }
 * }
 */
export interface DistributedLockOptionsFactory {
  createDistributedLockOptions(): DistributedLockOptions | Promise<DistributedLockOptions>;
}

/**
 * `forRootAsync` options, in the usual Nest shape: exactly one of `useFactory` (with `inject`),
 * `useClass` (a class the module instantiates) or `useExisting` (a provider `imports` or a global
 * module already provides).
 */
export interface DistributedLockAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: never[]) => DistributedLockOptions | Promise<DistributedLockOptions>;
  /** The providers passed to `useFactory`, in order. */
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  useClass?: Type<DistributedLockOptionsFactory>;
  useExisting?: Type<DistributedLockOptionsFactory>;
}

const OPTIONS_SOURCES = ['useFactory', 'useClass', 'useExisting'] as const;

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
  imports: LOCK_IMPORTS,
  // No store of its own: locks live in Redis. The token is provided so a test can override it (withInMemoryLocks).
  providers: [optionsProvider, { provide: DISTRIBUTED_LOCK_STORE, useFactory: () => null }, ...LOCK_PROVIDERS],
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
   * Configures the module from other providers, e.g. `ConfigService`: with `useFactory`, `useClass`
   * or `useExisting` (a `DistributedLockOptionsFactory`). Giving none or several of them throws a
   * `DistributedLockConfigError`.
   *
   * @example
   * DistributedLockModule.forRootAsync({
   *   inject: [ConfigService],
   *   useFactory: (config: ConfigService) => ({ url: config.getOrThrow('REDIS_URL') }),
   * })
   * @example
   * DistributedLockModule.forRootAsync({ imports: [ConfigModule], useClass: LockOptions })
   */
  static forRootAsync(options: DistributedLockAsyncOptions): DynamicModule {
    return {
      module: DistributedLockModule,
      imports: options.imports ?? [],
      providers: asyncOptionsProviders(options),
    };
  }
}

/** The providers behind `forRootAsync`, as Nest's `ConfigurableModuleBuilder` makes them. */
function asyncOptionsProviders(options: DistributedLockAsyncOptions): Provider[] {
  const given = OPTIONS_SOURCES.filter((source) => options[source] !== undefined);
  if (given.length !== 1) {
    throw new DistributedLockConfigError(
      'forRootAsync options',
      given.length > 0 ? given.join(' and ') : undefined,
      'given exactly one of useFactory, useClass and useExisting',
    );
  }
  const source = given[0];
  const value = options[source];
  if (typeof value !== 'function') {
    const expected = source === 'useFactory' ? 'a function' : 'a class implementing DistributedLockOptionsFactory';
    throw new DistributedLockConfigError(`forRootAsync ${source}`, value, expected);
  }

  if (options.useFactory) {
    return [
      {
        provide: EXPLICIT_OPTIONS,
        useFactory: options.useFactory as (...args: unknown[]) => DistributedLockOptions,
        inject: options.inject ?? [],
      },
    ];
  }
  const factoryClass = (options.useClass ?? options.useExisting) as Type<DistributedLockOptionsFactory>;
  const fromFactory: Provider = {
    provide: EXPLICIT_OPTIONS,
    useFactory: (factory: DistributedLockOptionsFactory) => factory.createDistributedLockOptions(),
    inject: [factoryClass],
  };
  // useExisting reuses a provider from `imports` or a global module; useClass makes one here.
  return options.useClass ? [fromFactory, { provide: factoryClass, useClass: factoryClass }] : [fromFactory];
}
