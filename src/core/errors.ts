import { describeValue } from './validation';

/** Base class of every error this library throws, except argument `TypeError`s. */
export class DistributedLockError extends Error {
  override name = this.constructor.name;
}

/**
 * A configuration value (module option or environment variable) that cannot work.
 * Thrown at bootstrap, so a misconfigured replica never starts scheduling.
 */
export class DistributedLockConfigError extends DistributedLockError {
  constructor(
    /** The option (`port`) or environment variable (`REDIS_PORT`) at fault. */
    readonly setting: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`${setting} must be ${expected}, got ${describeValue(value)}.`);
  }
}

/** Two settings that cannot both be given. */
export class ConflictingLockOptionsError extends DistributedLockError {
  constructor(
    readonly settings: readonly string[],
    advice: string,
  ) {
    super(`${settings.join(' and ')} cannot be combined: ${advice}`);
  }
}

/**
 * A bad argument to `@DistributedLock` or to a service method. A `TypeError`, thrown where the
 * mistake is made: while the class is being defined for the decorator.
 */
export class InvalidLockArgumentError extends TypeError {
  override name = 'InvalidLockArgumentError';

  constructor(
    readonly argument: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`${argument} must be ${expected}, got ${describeValue(value)}.`);
  }
}

/** A decorated method ran on an instance that Nest did not create with the lock service. */
export class LockServiceMissingError extends DistributedLockError {
  constructor(className: string, methodName: string) {
    super(
      `@DistributedLock on ${className}.${methodName} found no DistributedLockService. ` +
        `Import DistributedLockModule in your root module, and let Nest create ${className} ` +
        `(an instance made with "new" has no injected service).`,
    );
  }
}

/**
 * A held lock is no longer ours: Redis no longer has our token (it expired during a pause longer
 * than its TTL, or Redis lost it), or its TTL passed before an extension was confirmed. Another
 * holder may be running. It is the `reason` of the lock's aborted `signal`.
 */
export class LockLostError extends DistributedLockError {
  constructor(
    readonly key: string,
    readonly detail: string,
  ) {
    super(`Lock "${key}" was lost while held: ${detail}. Another holder may now be running.`);
  }
}
