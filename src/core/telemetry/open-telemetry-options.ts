// Typed here without importing @opentelemetry/api: it is an optional peer, and a declaration file
// that imports it fails to compile in an app without it (unless that app skips library checks).

/** What the library asks of an OpenTelemetry `MeterProvider`; the SDK's and the API's fit. */
export interface OpenTelemetryMeterProvider {
  getMeter(name: string, version?: string, options?: { schemaUrl?: string }): unknown;
}

/** What the library asks of an OpenTelemetry `TracerProvider`; the SDK's and the API's fit. */
export interface OpenTelemetryTracerProvider {
  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): unknown;
}

/**
 * Where metrics and spans go (the `openTelemetry` option). Each provider defaults to the global one
 * of `@opentelemetry/api` (`metrics.getMeterProvider()`, `trace.getTracerProvider()`).
 *
 * @example
 * const meterProvider = new MeterProvider({ readers: [new PrometheusExporter({ port: 9464 })] });
 * DistributedLockModule.forRoot({ url: 'redis://redis:6379', openTelemetry: { meterProvider } });
 */
export interface OpenTelemetryOptions {
  /** The meter provider of your SDK, e.g. one a `PrometheusExporter` reads. @default the global one */
  meterProvider?: OpenTelemetryMeterProvider;
  /** The tracer provider of your SDK. @default the global one */
  tracerProvider?: OpenTelemetryTracerProvider;
}
