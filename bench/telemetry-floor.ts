import {
  type Attributes,
  context,
  type MeterProvider,
  SpanKind,
  type SpanOptions,
  trace,
  type TracerProvider,
} from '@opentelemetry/api';
import { LOCK_ATTRIBUTES, TELEMETRY_SCOPE } from '../src/core/telemetry/lock-attributes';
import { ACQUIRE_BUCKETS, RUN_BUCKETS } from '../src/core/telemetry/lock-metrics';
import type { Cycler, LockClient } from './contenders';
import type { BenchTelemetry } from './open-telemetry-sdk';

/**
 * The floor's cycle plus, by hand, the OpenTelemetry SDK calls this library makes for one run of
 * a fixed-name job (`decorator-otel`): the acquisition's latency in its histogram, a span around
 * the run (started in the active context, made active while the run executes, its outcome set
 * before it ends), the run counted and its duration recorded; instruments, attribute sets and
 * span options built once. What is left against `decorator-otel` minus `decorator-fixed-ops-off`
 * is the library's own share of what OpenTelemetry adds per run.
 */
export function telemetryFloor(floor: LockClient, telemetry: BenchTelemetry, job: string): Cycler {
  const { meterProvider, tracerProvider } = telemetry.options as {
    meterProvider: MeterProvider;
    tracerProvider: TracerProvider;
  };
  const meter = meterProvider.getMeter(TELEMETRY_SCOPE);
  const tracer = tracerProvider.getTracer(TELEMETRY_SCOPE);
  const acquireDuration = meter.createHistogram('distributed_lock.acquire.duration', {
    unit: 's',
    advice: { explicitBucketBoundaries: ACQUIRE_BUCKETS },
  });
  const runs = meter.createCounter('distributed_lock.runs', { unit: '{run}' });
  const runDuration = meter.createHistogram('distributed_lock.run.duration', {
    unit: 's',
    advice: { explicitBucketBoundaries: RUN_BUCKETS },
  });
  const acquired: Attributes = Object.freeze({ [LOCK_ATTRIBUTES.job]: job, [LOCK_ATTRIBUTES.withoutRedis]: false });
  const ran: Attributes = Object.freeze({ [LOCK_ATTRIBUTES.job]: job, [LOCK_ATTRIBUTES.outcome]: 'ok' });
  const spanOptions = new Map<string, SpanOptions>();
  const spanOptionsOf = (key: string): SpanOptions => {
    let options = spanOptions.get(key);
    if (!options) {
      const attributes = {
        [LOCK_ATTRIBUTES.key]: key,
        [LOCK_ATTRIBUTES.withoutRedis]: false,
        [LOCK_ATTRIBUTES.job]: job,
      };
      spanOptions.set(key, (options = { kind: SpanKind.INTERNAL, attributes: Object.freeze(attributes) }));
    }
    return options;
  };
  const run = (): boolean => true;
  return {
    async cycle(key) {
      const requestedAt = performance.now();
      const held = await floor.tryAcquire(key);
      if (held === undefined) throw new Error(`floor-otel did not get the free lock ${key}`);
      acquireDuration.record((performance.now() - requestedAt) / 1000, acquired);
      const startedAt = performance.now();
      const parent = context.active();
      const span = tracer.startSpan(`lock.run ${job}`, spanOptionsOf(key), parent);
      context.with(trace.setSpan(parent, span), run);
      span.setAttribute(LOCK_ATTRIBUTES.outcome, 'ok');
      span.end();
      runs.add(1, ran);
      runDuration.record((performance.now() - startedAt) / 1000, ran);
      await floor.release(held);
    },
    telemetrySeen: () => telemetry.seen(),
    async close() {
      await floor.close();
      await telemetry.shutdown();
    },
  };
}
