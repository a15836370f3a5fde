import type { Attributes } from '@opentelemetry/api';

/** The instrumentation scope of every meter and tracer of the library. */
export const TELEMETRY_SCOPE = 'dpa-distributed-lock-cron';

/** `@opentelemetry/api`, an optional peer: loaded only when `openTelemetry` is set. */
export type OpenTelemetryApi = typeof import('@opentelemetry/api');

/** Attribute names, in OpenTelemetry's style: a namespace, then snake_case. */
export const LOCK_ATTRIBUTES = {
  job: 'distributed_lock.job',
  key: 'distributed_lock.key',
  outcome: 'distributed_lock.outcome',
  skipReason: 'distributed_lock.skip_reason',
  withoutRedis: 'distributed_lock.without_redis',
  tick: 'distributed_lock.tick',
  fencingToken: 'distributed_lock.fencing_token',
  trigger: 'distributed_lock.trigger',
  attempt: 'distributed_lock.attempt',
  errorType: 'error.type',
} as const;

/** `error.type` as OpenTelemetry's conventions put it: the error's class, `_OTHER` for a thrown non-error. */
export function errorType(error: unknown): string {
  return error instanceof Error ? error.name : '_OTHER';
}

/**
 * Attribute sets built once per job and variant (an outcome, a fail-open acquisition) and frozen,
 * so a run allocates none: the SDK hashes whatever it is given and keeps the first object it sees
 * per series, and nothing changes these after. Jobs are few, as the series they name.
 */
export class JobAttributeSets {
  private readonly byJob = new Map<string, Map<string, Attributes>>();

  /** The set of `job` for `variant`, which `build` makes from the first `event` that asks for it. */
  of<E>(job: string, variant: string, event: E, build: (event: E) => Attributes): Attributes {
    let sets = this.byJob.get(job);
    if (sets === undefined) this.byJob.set(job, (sets = new Map()));
    let attributes = sets.get(variant);
    if (attributes === undefined) sets.set(variant, (attributes = Object.freeze(build(event))));
    return attributes;
  }
}
