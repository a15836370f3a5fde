import type { Attributes, Span, SpanOptions, TracerProvider } from '@opentelemetry/api';
import { describeError } from '../errors';
import type { LockHandle } from '../locks/lock-handle';
import type { LockLogger } from '../logger';
import { errorType, LOCK_ATTRIBUTES, type OpenTelemetryApi, TELEMETRY_SCOPE } from './lock-attributes';
import { type RunOutcome, runOutcome, type RunTracer, type TracedRun } from './run-tracer';

/** What a run's span is started with, and the lock it was built for. */
interface SpanShape {
  readonly key: string;
  readonly withoutRedis: boolean;
  readonly name: string;
  readonly options: SpanOptions;
}

/** A span per guarded run, child of the context the run is called in (the guarded call's own). */
export function runTracer(api: OpenTelemetryApi, tracerProvider: TracerProvider, logger: LockLogger): RunTracer {
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

  // Per job, the name and options of its last span: the next run of a fixed-name job without a
  // tick, fencing token or policy has the same ones, so it builds none. The SDK copies what it is given.
  const lastShapes = new Map<string, SpanShape>();
  const shapeOf = (lock: LockHandle): SpanShape => {
    const { job, key, withoutRedis } = lock;
    const sameEachRun = job !== undefined && lock.tick === undefined && lock.fencingToken === undefined && !lock.claim;
    if (sameEachRun) {
      const last = lastShapes.get(job);
      if (last !== undefined && last.key === key && last.withoutRedis === withoutRedis) return last;
    }
    const attributes = Object.freeze(spanAttributes(lock));
    const shape = {
      key,
      withoutRedis,
      name: `lock.run ${job ?? key}`,
      options: { kind: SpanKind.INTERNAL, attributes },
    };
    if (sameEachRun) lastShapes.set(job, shape);
    return shape;
  };

  return {
    trace<T>(lock: LockHandle, run: () => T): TracedRun<T> {
      const parent = context.active();
      let span: Span;
      try {
        const { name, options } = shapeOf(lock);
        span = tracer.startSpan(name, options, parent);
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
