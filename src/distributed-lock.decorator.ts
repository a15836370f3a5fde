import { Inject } from '@nestjs/common';
import { assertLockArguments } from './core/lock-engine';
import { InvalidLockArgumentError, LockServiceMissingError } from './core/errors';
import { DistributedLockService } from './distributed-lock.service';
import { copyMethodMetadata } from './utils/copy-method-metadata';

/** The options-object form of `@DistributedLock`. */
export interface DistributedLockDecoratorOptions {
  /** Lock name, shared by every replica that must not run the method at the same time. */
  key: string;
  /** How long the lock lives if its holder dies without releasing it, in ms. */
  ttlMs: number;
}

// The symbol's text is what Nest prints when the service cannot be injected: it says what to import.
const LOCK_SERVICE = Symbol(
  'DistributedLockService, provided by DistributedLockModule: import DistributedLockModule in your root module',
);

type LockedInstance = Record<symbol, DistributedLockService | undefined>;

/**
 * Runs the method on one replica at a time: the replica that takes the lock runs it and releases
 * the lock when it settles; the others skip it and resolve `undefined`. Place it above or below
 * `@Cron`, `@Interval` or `@Timeout`.
 *
 * @example
 * @Cron(CronExpression.EVERY_DAY_AT_6AM)
 * @DistributedLock('cron:daily-sync', 300_000)
 * async dailySync(): Promise<void> {}
 */
export function DistributedLock(key: string, ttlMs: number): MethodDecorator;
export function DistributedLock(options: DistributedLockDecoratorOptions): MethodDecorator;
export function DistributedLock(keyOrOptions: string | DistributedLockDecoratorOptions, ttl?: number): MethodDecorator {
  const { key, ttlMs } = normalizeArguments(keyOrOptions, ttl);
  assertLockArguments(key, ttlMs); // throws while the class is being defined
  const injectLockService = Inject(DistributedLockService);

  return (target, methodName, descriptor: PropertyDescriptor) => {
    const handler: unknown = descriptor.value;
    const className = target.constructor.name;
    const jobName = `${className}.${String(methodName)}`;
    if (typeof handler !== 'function') {
      throw new InvalidLockArgumentError(`@DistributedLock target ${jobName}`, handler, 'a method');
    }
    // Property injection reaches the service of the app that created this instance.
    injectLockService(target, LOCK_SERVICE);

    const guarded = async function (this: LockedInstance, ...args: unknown[]): Promise<unknown> {
      const locks = this?.[LOCK_SERVICE];
      if (!locks) throw new LockServiceMissingError(className, String(methodName));
      return locks.runJob(jobName, key, ttlMs, () => handler.apply(this, args));
    };
    copyMethodMetadata(handler, guarded); // @Cron may already be on `handler` when it sits below us
    descriptor.value = guarded;
  };
}

function normalizeArguments(
  keyOrOptions: string | DistributedLockDecoratorOptions,
  ttlMs: number | undefined,
): DistributedLockDecoratorOptions {
  if (typeof keyOrOptions === 'object' && keyOrOptions !== null) {
    if (ttlMs !== undefined) {
      throw new InvalidLockArgumentError(
        'the second argument of @DistributedLock(options)',
        ttlMs,
        'omitted: put ttlMs in the options',
      );
    }
    return keyOrOptions;
  }
  return { key: keyOrOptions, ttlMs: ttlMs as number };
}
