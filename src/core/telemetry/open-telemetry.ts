import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import { DistributedLockConfigError } from '../errors';
import type { LockEventListener } from '../events/lock-events';
import type { LockLogger } from '../logger';
import { type OpenTelemetryApi, TELEMETRY_SCOPE } from './lock-attributes';
import { metricsListener, observeHeldLocks } from './lock-metrics';
import type { OpenTelemetryOptions } from './open-telemetry-options';
import type { RunTracer } from './run-tracer';
import { runTracer } from './span-tracer';

export { LOCK_ATTRIBUTES, TELEMETRY_SCOPE } from './lock-attributes';
export type { OpenTelemetryOptions } from './open-telemetry-options';

/** What an engine needs from `createLockTelemetry`: a listener for its events, a tracer for its runs. */
export interface LockTelemetry {
  readonly listener: LockEventListener;
  readonly tracer: RunTracer;
  /** Stops reporting this engine's held locks (the engine calls it when it closes). */
  close(): void;
}

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
