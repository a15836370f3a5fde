import { describeValue } from './validation';

/** What an error says, for a log line or a record: its message, or the thrown value as text. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

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

/** How many job names an `UnknownJobError` lists. */
const KNOWN_JOBS_SHOWN = 20;

/** A job name no replica declared under the key prefix looked at (fleet inspection, the CLI). */
export class UnknownJobError extends DistributedLockError {
  constructor(
    readonly job: string,
    /** Every job declared under the prefix, sorted. */
    readonly knownJobs: readonly string[],
    readonly keyPrefix: string,
  ) {
    const more = knownJobs.length > KNOWN_JOBS_SHOWN ? ` and ${knownJobs.length - KNOWN_JOBS_SHOWN} more` : '';
    super(
      knownJobs.length === 0
        ? `No job ${JSON.stringify(job)}: no replica has declared any job under the key prefix ${JSON.stringify(keyPrefix)}. ` +
            'Check the prefix (REDIS_KEY_PREFIX) and the database, and that a replica has started.'
        : `No job ${JSON.stringify(job)} is declared under the key prefix ${JSON.stringify(keyPrefix)}. ` +
            `Known jobs: ${knownJobs.slice(0, KNOWN_JOBS_SHOWN).join(', ')}${more}.`,
    );
  }
}

/** A job without a `@Cron` schedule was asked about its occurrences. */
export class UnscheduledJobError extends DistributedLockError {
  constructor(readonly job: string) {
    super(
      `Job ${JSON.stringify(job)} has no @Cron schedule (an @Interval, @Timeout or unscheduled job), ` +
        'so it has no occurrences to check.',
    );
  }
}

/** Why a job whose lock name is computed per call cannot be paused by name, over Redis or in memory. */
export const NO_SINGLE_LOCK_TO_PAUSE = 'it has no single lock to pause it on.';

/** A job whose lock name is computed per call (a key function) was named where one lock is needed. */
export class ComputedLockNameError extends DistributedLockError {
  constructor(
    readonly job: string,
    advice: string,
  ) {
    super(`Job ${JSON.stringify(job)} computes its lock name on each call (a key function): ${advice}`);
  }
}

/** A job's policy (`catchUp`, `retry`) cannot keep its promise where it is used; thrown at boot. */
export class JobPolicyError extends DistributedLockError {
  constructor(
    readonly job: string,
    /** The option at fault, e.g. `catchUp.windowMs`. */
    readonly option: string,
    reason: string,
  ) {
    super(`${option} on ${job} cannot be used: ${reason}`);
  }
}
