import type { Context } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { OpenTelemetryOptions } from '../src';

/** How often the bench's reader collects the metrics (a Prometheus scrape every 10 s is common). */
const EXPORT_INTERVAL_MS = 10_000;

/**
 * Counts the spans that end and keeps none: every span is still sampled, recorded and given its
 * attributes by the SDK, but no exporter's work (serialising, sending) is added to the run.
 */
class CountingSpanProcessor implements SpanProcessor {
  ended = 0;
  onStart(_span: Span, _parent: Context): void {}
  onEnd(_span: ReadableSpan): void {
    this.ended++;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** The SDK providers the OpenTelemetry contenders pass as `openTelemetry`, and what they saw. */
export interface BenchTelemetry {
  readonly options: OpenTelemetryOptions;
  /** Spans ended so far, and guarded runs counted by the `distributed_lock.runs` counter at the last collection. */
  seen(): Promise<{ spans: number; runsCounted: number }>;
  shutdown(): Promise<void>;
}

/**
 * The real SDK, as an app that exports both signals sets it up: a `MeterProvider` with a periodic
 * reader (cumulative, in memory) and a `BasicTracerProvider` with the default sampler (every span
 * recorded) and a span processor that drops what it is handed. No context manager is registered,
 * as without `NodeSDK`: `context.with` is then free, so what is measured is the library's
 * instrumentation and the SDK's recording, not `AsyncLocalStorage`.
 */
export function benchTelemetry(): BenchTelemetry {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: EXPORT_INTERVAL_MS,
    exportTimeoutMillis: EXPORT_INTERVAL_MS / 2,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new CountingSpanProcessor();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [spans] });
  return {
    options: { meterProvider, tracerProvider },
    async seen() {
      const { resourceMetrics } = await reader.collect();
      let runsCounted = 0;
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          if (metric.descriptor.name !== 'distributed_lock.runs') continue;
          for (const point of metric.dataPoints) runsCounted += point.value as number;
        }
      }
      return { spans: spans.ended, runsCounted };
    },
    async shutdown() {
      await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
    },
  };
}
