import type { Attributes, Meter, MeterProvider, Span, TracerProvider } from '@opentelemetry/api';
import { describeError, DistributedLockConfigError } from '../errors';
import type { LockEvent, LockEventListener } from '../events/lock-events';
import type { LockHandle } from '../locks/lock-handle';
import type { LockLogger } from '../logger';
import type { OpenTelemetryOptions } from './open-telemetry-options';
import { type RunOutcome, runOutcome, type RunTracer, type TracedRun } from './run-tracer';

export type { OpenTelemetryOptions } from './open-telemetry-options';

/** What an engine needs from `createLockTelemetry`: a listener for its events, a tracer for its runs. */
export interface LockTelemetry {
  readonly listener: LockEventListener;
  readonly tracer: RunTracer;
  /** Stops reporting this engine's held locks (the engine calls it when it closes). */
  close(): void;
}

/** The instrumentation scope of every meter and tracer of the library. */
export const TELEMETRY_SCOPE = 'dpa-distributed-lock-cron';

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

// Seconds, as OpenTelemetry's duration histograms are: a Redis round trip, then jobs of up to an hour.
const ACQUIRE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const RUN_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

type OpenTelemetryApi = typeof import('@opentelemetry/api');

/**
 * Metrics and spans of one engine through `@opentelemetry/api`, an optional peer loaded only here:
 * without an SDK registered, every instrument and span is a no-op. `true` stands for the global
 * providers. Metric attributes name the job (the key for a lock taken outside a job), never a
 * token, so series stay few.
 */
export function createLockTelemetry(
  options: true | OpenTelemetryOptions,
  sources: { heldLocks: () => number; logger: LockLogger },
): LockTelemetry {
  const api = loadApi(options);
  const { meterProvider = api.metrics.getMeterProvider(), tracerProvider = api.trace.getTracerProvider() } =
    checkOptions(options === true ? {} : options);
  const meter = meterProvider.getMeter(TELEMETRY_SCOPE);
  const stopGauge = observeHeldLocks(meter, sources.heldLocks);
  return {
    listener: metricsListener(meter),
    tracer: runTracer(api, tracerProvider, sources.logger),
    close: stopGauge,
  };
}

function loadApi(options: unknown): OpenTelemetryApi {
  try {
    // Loaded lazily: @opentelemetry/api is an optional peer, and apps without it still import this package.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@opentelemetry/api') as OpenTelemetryApi;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new DistributedLockConfigError(
      'openTelemetry',
      options,
      'unset or false until @opentelemetry/api is installed (npm install @opentelemetry/api, an optional peer dependency)',
    );
  }
}

/** The options' providers as the API types them (`OpenTelemetryOptions` spells them out without importing it). */
interface Providers {
  meterProvider?: MeterProvider;
  tracerProvider?: TracerProvider;
}

function checkOptions(options: OpenTelemetryOptions): Providers {
  if (options === null || typeof options !== 'object') {
    throw new DistributedLockConfigError(
      'openTelemetry',
      options,
      'true, false or { meterProvider?, tracerProvider? }',
    );
  }
  const { meterProvider, tracerProvider } = options;
  if (meterProvider !== undefined && typeof meterProvider?.getMeter !== 'function') {
    throw new DistributedLockConfigError(
      'openTelemetry.meterProvider',
      meterProvider,
      'a MeterProvider (with getMeter())',
    );
  }
  if (tracerProvider !== undefined && typeof tracerProvider?.getTracer !== 'function') {
    throw new DistributedLockConfigError(
      'openTelemetry.tracerProvider',
      tracerProvider,
      'a TracerProvider (with getTracer())',
    );
  }
  return options as Providers;
}

function metricsListener(meter: Meter): LockEventListener {
  const runs = meter.createCounter('distributed_lock.runs', {
    description: 'Guarded runs that settled, by outcome (ok, error, lost).',
    unit: '{run}',
  });
  const skips = meter.createCounter('distributed_lock.skips', {
    description:
      'Acquisitions not granted, by reason (held, tick-served, paused, clock-skew, refused, unavailable, closed).',
    unit: '{skip}',
  });
  const failOpen = meter.createCounter('distributed_lock.fail_open', {
    description: 'Acquisitions granted without Redis by the fail-open mode: what they guard ran unlocked.',
    unit: '{acquisition}',
  });
  const failed = meter.createCounter('distributed_lock.occurrences.failed', {
    description: 'Occurrences of jobs with retry that failed after their last attempt, by attempts made.',
    unit: '{occurrence}',
  });
  const lost = meter.createCounter('distributed_lock.lost', {
    description: 'Held locks lost: taken over, expired before an extension was confirmed, or abandoned at shutdown.',
    unit: '{lock}',
  });
  const acquireDuration = meter.createHistogram('distributed_lock.acquire.duration', {
    description: 'From sending a granted acquisition to its answer.',
    unit: 's',
    advice: { explicitBucketBoundaries: ACQUIRE_BUCKETS },
  });
  const runDuration = meter.createHistogram('distributed_lock.run.duration', {
    description: 'How long guarded runs took, by outcome.',
    unit: 's',
    advice: { explicitBucketBoundaries: RUN_BUCKETS },
  });

  return (event) => {
    switch (event.type) {
      case 'acquired': {
        // The SDK keeps the attributes object it is given: each instrument gets its own.
        if (event.withoutRedis) failOpen.add(1, nameOf(event));
        const attributes = nameOf(event);
        attributes[LOCK_ATTRIBUTES.withoutRedis] = event.withoutRedis;
        acquireDuration.record(event.latencyMs / 1000, attributes);
        return;
      }
      case 'skipped': {
        const attributes = nameOf(event);
        attributes[LOCK_ATTRIBUTES.skipReason] = event.reason;
        skips.add(1, attributes);
        return;
      }
      case 'ran': {
        const attributes = nameOf(event);
        attributes[LOCK_ATTRIBUTES.outcome] = event.outcome;
        if (event.outcome === 'error') attributes[LOCK_ATTRIBUTES.errorType] = errorType(event.error);
        runs.add(1, attributes);
        runDuration.record(event.durationMs / 1000, attributes);
        return;
      }
      case 'lost':
        lost.add(1, nameOf(event));
        return;
      case 'failed': {
        const attributes = nameOf(event);
        attributes[LOCK_ATTRIBUTES.attempt] = event.attempts;
        failed.add(1, attributes);
        return;
      }
    }
  };
}

/** The job, or the key of a lock taken outside a job: a key made per call (a tenant's) would multiply series. */
function nameOf(event: Extract<LockEvent, { tick: number | undefined }>): Attributes {
  const attributes: Attributes =
    event.job === undefined ? { [LOCK_ATTRIBUTES.key]: event.key } : { [LOCK_ATTRIBUTES.job]: event.job };
  // What started the run, for jobs with a policy (a handful of values each: few series).
  if (event.trigger !== undefined) attributes[LOCK_ATTRIBUTES.trigger] = event.trigger;
  if (event.attempt !== undefined) attributes[LOCK_ATTRIBUTES.attempt] = event.attempt;
  return attributes;
}

/** Every engine on one meter adds its locks to one gauge: a second callback would overwrite, not add. */
const heldLockSources = new WeakMap<Meter, Set<() => number>>();

function observeHeldLocks(meter: Meter, heldLocks: () => number): () => void {
  let sources = heldLockSources.get(meter);
  if (!sources) {
    const all = new Set<() => number>();
    meter
      .createObservableGauge('distributed_lock.held', {
        description: 'Locks this process holds now.',
        unit: '{lock}',
      })
      .addCallback((result) => {
        let held = 0;
        for (const count of all) held += count();
        result.observe(held);
      });
    heldLockSources.set(meter, (sources = all));
  }
  sources.add(heldLocks);
  const added = sources;
  return () => void added.delete(heldLocks);
}

/** A span per guarded run, child of the context the run is called in (the guarded call's own). */
function runTracer(api: OpenTelemetryApi, tracerProvider: TracerProvider, logger: LockLogger): RunTracer {
  const tracer = tracerProvider.getTracer(TELEMETRY_SCOPE);
  const { context, trace, SpanKind, SpanStatusCode } = api;

  // A failing SDK (a span processor that throws) is logged: the engine releases the lock after end().
  const endSpan = (span: Span, outcome: RunOutcome, error: unknown): void => {
    try {
      span.setAttribute(LOCK_ATTRIBUTES.outcome, outcome);
      if (outcome === 'error') {
        span.setAttribute(LOCK_ATTRIBUTES.errorType, errorType(error));
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
      } else if (outcome === 'lost') {
        if (error !== undefined) span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'the lock was lost while the run held it' });
      }
      span.end();
    } catch (failure) {
      logger.error(`Could not end the span of a guarded run: ${describeError(failure)}`);
    }
  };

  return {
    trace<T>(lock: LockHandle, run: () => T): TracedRun<T> {
      const parent = context.active();
      let span: Span;
      try {
        const attributes = spanAttributes(lock);
        span = tracer.startSpan(`lock.run ${lock.job ?? lock.key}`, { kind: SpanKind.INTERNAL, attributes }, parent);
      } catch (failure) {
        logger.error(`Could not start the span of a guarded run: ${describeError(failure)}`);
        return { result: run(), end: () => {} };
      }
      let result: T;
      try {
        result = context.with(trace.setSpan(parent, span), run);
      } catch (error) {
        // The engine never sees this span when the run throws at once: end it here, as the engine would.
        endSpan(span, runOutcome(lock, true), error);
        throw error;
      }
      return { result, end: (outcome, error) => endSpan(span, outcome, error) };
    },
  };
}

function spanAttributes(lock: LockHandle): Attributes {
  const attributes: Attributes = {
    [LOCK_ATTRIBUTES.key]: lock.key,
    [LOCK_ATTRIBUTES.withoutRedis]: lock.withoutRedis,
  };
  if (lock.job !== undefined) attributes[LOCK_ATTRIBUTES.job] = lock.job;
  if (lock.tick !== undefined) attributes[LOCK_ATTRIBUTES.tick] = new Date(lock.tick).toISOString();
  if (lock.fencingToken !== undefined) attributes[LOCK_ATTRIBUTES.fencingToken] = lock.fencingToken;
  if (lock.claim) {
    attributes[LOCK_ATTRIBUTES.trigger] = lock.trigger;
    attributes[LOCK_ATTRIBUTES.attempt] = lock.attempt;
  }
  return attributes;
}

/** `error.type` as OpenTelemetry's conventions put it: the error's class, `_OTHER` for a thrown non-error. */
function errorType(error: unknown): string {
  return error instanceof Error ? error.name : '_OTHER';
}
