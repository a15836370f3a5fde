import { context, metrics, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { CronSchedule, type DistributedLockOptions, JobDefinition, LockEngine, type LockLogger } from '../../src/core';
import {
  createLockTelemetry,
  LOCK_ATTRIBUTES as A,
  type OpenTelemetryOptions,
  TELEMETRY_SCOPE,
} from '../../src/core/telemetry/open-telemetry';
import { CAN_CONTROL_REDIS, freePort, startTestRedis, type TestRedis } from '../support/redis-server';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const JOB = 'Reports.nightly';
const KEY = 'reports:nightly';

describe('OpenTelemetry metrics and spans of guarded runs', () => {
  let redis: TestRedis;
  const engines: LockEngine[] = [];
  const logger = { warn: jest.fn(), error: jest.fn() } satisfies LockLogger;

  const instrumented = (
    openTelemetry: true | OpenTelemetryOptions,
    options: DistributedLockOptions = {},
  ): LockEngine => {
    const engine = new LockEngine({ url: redis.url, logger: false, openTelemetry, ...options });
    engines.push(engine);
    return engine;
  };

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((engine) => engine.close()));
    logger.warn.mockClear();
    logger.error.mockClear();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  describe('with @opentelemetry/api alone, no SDK registered', () => {
    it('runs jobs, passes their results and errors through, and records nothing', async () => {
      const locks = instrumented({});
      let active: unknown = 'not run';
      await expect(
        locks.runJob(JOB, KEY, 10_000, () => {
          active = trace.getActiveSpan()?.isRecording();
          return 'done';
        }),
      ).resolves.toBe('done');
      const failure = new Error('report failed');
      await expect(locks.withLock('failing', 10_000, () => Promise.reject(failure))).rejects.toBe(failure);
      expect(active).not.toBe(true);
      expect(logger.error).not.toHaveBeenCalled();
    });
  });

  describe('with the OpenTelemetry SDK', () => {
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    const tracer = tracerProvider.getTracer('test');
    let meterProvider: MeterProvider;
    let collect: () => Promise<Map<string, DataPoint<unknown>[]>>;

    beforeAll(() => {
      // Parent and child spans across awaits, as an app's SDK (NodeSDK) sets them up.
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    });
    beforeEach(() => {
      const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
      const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
      meterProvider = new MeterProvider({ readers: [reader] });
      spans.reset();
      collect = async () => {
        await reader.forceFlush();
        const scopes = exporter.getMetrics().at(-1)?.scopeMetrics ?? [];
        const ours = scopes.filter((scope) => scope.scope.name === TELEMETRY_SCOPE).flatMap((scope) => scope.metrics);
        return new Map(ours.map((metric) => [metric.descriptor.name, metric.dataPoints as DataPoint<unknown>[]]));
      };
    });
    afterEach(() => meterProvider.shutdown());
    afterAll(async () => {
      context.disable();
      await tracerProvider.shutdown();
    });

    const valuesOf = (points: DataPoint<unknown>[] | undefined) =>
      (points ?? []).map(({ attributes, value }) => ({ attributes, value }));
    const countsOf = (points: DataPoint<unknown>[] | undefined) =>
      (points ?? []).map(({ attributes, value }) => ({ attributes, count: (value as Histogram).count }));
    const spanNamed = (name: string): ReadableSpan => {
      const found = spans.getFinishedSpans().filter((span) => span.name === name);
      expect(found).toHaveLength(1);
      return found[0];
    };

    it('counts the run on the replica that took the tick, and the skip with its reason on the other', async () => {
      const [a, b] = [instrumented({ meterProvider }), instrumented({ meterProvider })];
      const tick = Date.now() - 1_000;
      const work = () => sleep(50).then(() => 'ran');
      const results = await Promise.all([
        a.runJob(JOB, KEY, 10_000, work, { tick, fencing: true }),
        b.runJob(JOB, KEY, 10_000, work, { tick, fencing: true }),
      ]);
      expect(results.filter((result) => result === 'ran')).toHaveLength(1);

      const data = await collect();
      expect(valuesOf(data.get('distributed_lock.runs'))).toEqual([
        { attributes: { [A.job]: JOB, [A.outcome]: 'ok' }, value: 1 },
      ]);
      const skips = valuesOf(data.get('distributed_lock.skips'));
      expect(skips).toEqual([{ attributes: { [A.job]: JOB, [A.skipReason]: expect.any(String) }, value: 1 }]);
      expect(['held', 'tick-served']).toContain(skips[0].attributes[A.skipReason]);
      expect(countsOf(data.get('distributed_lock.acquire.duration'))).toEqual([
        { attributes: { [A.job]: JOB, [A.withoutRedis]: false }, count: 1 },
      ]);
      const [run] = data.get('distributed_lock.run.duration')!;
      expect(run.attributes).toEqual({ [A.job]: JOB, [A.outcome]: 'ok' });
      expect((run.value as Histogram).count).toBe(1);
      expect((run.value as Histogram).sum).toBeGreaterThanOrEqual(0.045); // seconds
      expect(valuesOf(data.get('distributed_lock.fail_open'))).toEqual([]);
      expect(valuesOf(data.get('distributed_lock.lost'))).toEqual([]);
    });

    it('labels the runs of a job with a policy by trigger and attempt, and counts an occurrence that failed for good', async () => {
      const locks = instrumented({ meterProvider, tracerProvider });
      const job = new JobDefinition({
        name: 'Reports.flaky',
        key: 'reports:flaky',
        ttlMs: 5_000,
        schedule: () => new CronSchedule('0 0 0 * * *', { timeZone: 'UTC' }),
        policies: { retry: { attempts: 2, backoffMs: 50 } },
      });
      const fail = () => Promise.reject(new RangeError('no data'));
      locks.startPolicies(job, fail);
      await expect(locks.runDefinedJob(job, fail)).rejects.toThrow('no data');
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && !(await collect()).get('distributed_lock.occurrences.failed')?.length)
        await sleep(20);

      const data = await collect();
      const base = { [A.job]: 'Reports.flaky', [A.outcome]: 'error', [A.errorType]: 'RangeError' };
      expect(valuesOf(data.get('distributed_lock.runs'))).toEqual([
        { attributes: { ...base, [A.trigger]: 'schedule', [A.attempt]: 1 }, value: 1 },
        { attributes: { ...base, [A.trigger]: 'retry', [A.attempt]: 2 }, value: 1 },
      ]);
      expect(valuesOf(data.get('distributed_lock.occurrences.failed'))).toEqual([
        { attributes: { [A.job]: 'Reports.flaky', [A.trigger]: 'retry', [A.attempt]: 2 }, value: 1 },
      ]);
      const runSpans = spans.getFinishedSpans().filter((span) => span.name === 'lock.run Reports.flaky');
      expect(runSpans.map((span) => [span.attributes[A.trigger], span.attributes[A.attempt]])).toEqual([
        ['schedule', 1],
        ['retry', 2],
      ]);
    });

    it('counts a plain lock under its key, and a run that threw with its error type', async () => {
      const locks = instrumented({ meterProvider });
      await locks.withLock('invoices', 10_000, () => 'sent');
      await expect(locks.withLock('invoices', 10_000, () => Promise.reject(new TypeError('bad row')))).rejects.toThrow(
        'bad row',
      );
      expect(valuesOf((await collect()).get('distributed_lock.runs'))).toEqual([
        { attributes: { [A.key]: 'invoices', [A.outcome]: 'ok' }, value: 1 },
        { attributes: { [A.key]: 'invoices', [A.outcome]: 'error', [A.errorType]: 'TypeError' }, value: 1 },
      ]);
    });

    it('counts a fail-open decision when Redis cannot be reached', async () => {
      const locks = instrumented(
        { meterProvider, tracerProvider },
        {
          url: `redis://127.0.0.1:${await freePort()}`, // nothing listens there
          acquireTimeoutMs: 200,
        },
      );
      await expect(locks.runJob(JOB, KEY, 10_000, () => 'ran without a lock')).resolves.toBe('ran without a lock');

      const data = await collect();
      expect(valuesOf(data.get('distributed_lock.fail_open'))).toEqual([{ attributes: { [A.job]: JOB }, value: 1 }]);
      expect(countsOf(data.get('distributed_lock.acquire.duration'))).toEqual([
        { attributes: { [A.job]: JOB, [A.withoutRedis]: true }, count: 1 },
      ]);
      expect(spanNamed(`lock.run ${JOB}`).attributes[A.withoutRedis]).toBe(true);
    });

    it('keeps each run of a job in its own series and span, however its earlier runs ended', async () => {
      const locks = instrumented({ meterProvider, tracerProvider }, { acquireTimeoutMs: 200 });
      await locks.waitUntilConnected();
      const fail = (error: Error) => () => Promise.reject(error);
      await locks.runJob(JOB, KEY, 10_000, () => 'ok');
      await expect(locks.runJob(JOB, KEY, 10_000, fail(new TypeError('bad row')))).rejects.toThrow('bad row');
      await expect(locks.runJob(JOB, KEY, 10_000, fail(new RangeError('no rows')))).rejects.toThrow('no rows');
      await locks.runJob(JOB, 'another-key', 10_000, () => 'ok');
      redis.pause(); // no answer within acquireTimeoutMs: the next run goes ahead without Redis (fail-open)
      try {
        await locks.runJob(JOB, KEY, 10_000, () => 'ok');
      } finally {
        redis.resume();
      }
      await locks.runJob(JOB, KEY, 10_000, () => 'ok');

      const data = await collect();
      const byValue = (a: { value: unknown }, b: { value: unknown }) => Number(b.value) - Number(a.value);
      expect(valuesOf(data.get('distributed_lock.runs')).sort(byValue)).toEqual([
        { attributes: { [A.job]: JOB, [A.outcome]: 'ok' }, value: 4 },
        { attributes: { [A.job]: JOB, [A.outcome]: 'error', [A.errorType]: 'TypeError' }, value: 1 },
        { attributes: { [A.job]: JOB, [A.outcome]: 'error', [A.errorType]: 'RangeError' }, value: 1 },
      ]);
      expect(countsOf(data.get('distributed_lock.acquire.duration'))).toEqual([
        { attributes: { [A.job]: JOB, [A.withoutRedis]: false }, count: 5 },
        { attributes: { [A.job]: JOB, [A.withoutRedis]: true }, count: 1 },
      ]);
      const runs = spans.getFinishedSpans().filter((span) => span.name === `lock.run ${JOB}`);
      expect(
        runs.map((span) => [span.attributes[A.key], span.attributes[A.withoutRedis], span.attributes[A.outcome]]),
      ).toEqual([
        [KEY, false, 'ok'],
        [KEY, false, 'error'],
        [KEY, false, 'error'],
        ['another-key', false, 'ok'],
        [KEY, true, 'ok'],
        [KEY, false, 'ok'],
      ]);
      expect(runs.map((span) => span.attributes[A.errorType])).toEqual([
        undefined,
        'TypeError',
        'RangeError',
        undefined,
        undefined,
        undefined,
      ]);
    });

    it('counts a lost lock, and ends its run as lost in the counter and the span', async () => {
      const locks = instrumented({ meterProvider, tracerProvider });
      await locks.withLock('stolen', 900, async () => {
        await redis.client().set('lock:{stolen}', 'someone else');
        await sleep(500); // the renewal at ttl/3 finds the token gone
      });

      const data = await collect();
      expect(valuesOf(data.get('distributed_lock.lost'))).toEqual([{ attributes: { [A.key]: 'stolen' }, value: 1 }]);
      expect(valuesOf(data.get('distributed_lock.runs'))).toEqual([
        { attributes: { [A.key]: 'stolen', [A.outcome]: 'lost' }, value: 1 },
      ]);
      const span = spanNamed('lock.run stolen');
      expect(span.attributes[A.outcome]).toBe('lost');
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
    });

    it('reads the locks held now, summed over the engines reporting to one meter provider', async () => {
      const [a, b] = [instrumented({ meterProvider }), instrumented({ meterProvider })];
      await a.acquireLock('held:1', 10_000);
      const handle = await a.acquire('held:2', 10_000);
      await b.acquireLock('held:3', 10_000);
      expect(valuesOf((await collect()).get('distributed_lock.held'))).toEqual([{ attributes: {}, value: 3 }]);

      await handle!.release();
      await b.releaseLock('held:3');
      expect(valuesOf((await collect()).get('distributed_lock.held'))).toEqual([{ attributes: {}, value: 1 }]);

      await Promise.all([a.close(), b.close()]);
      expect(valuesOf((await collect()).get('distributed_lock.held'))).toEqual([{ attributes: {}, value: 0 }]);
    });

    it("wraps each run in a span, child of the caller's span and parent of the spans the job starts", async () => {
      const locks = instrumented({ tracerProvider });
      const tick = Date.now() - 1_000;
      await tracer.startActiveSpan('caller', async (caller) => {
        await locks.runJob(
          JOB,
          KEY,
          10_000,
          async () => {
            await sleep(5); // the run's span stays active across the job's awaits
            tracer.startSpan('inside the job').end();
          },
          { tick, fencing: true },
        );
        caller.end();
      });

      const [caller, run, inside] = ['caller', `lock.run ${JOB}`, 'inside the job'].map(spanNamed);
      expect(run.parentSpanContext?.spanId).toBe(caller.spanContext().spanId);
      expect(run.spanContext().traceId).toBe(caller.spanContext().traceId);
      expect(inside.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
      expect(run.kind).toBe(SpanKind.INTERNAL);
      expect(run.instrumentationScope.name).toBe(TELEMETRY_SCOPE);
      expect(run.attributes).toEqual({
        [A.job]: JOB,
        [A.key]: KEY,
        [A.tick]: new Date(tick).toISOString(),
        [A.fencingToken]: locks.fencingToken(KEY) ?? expect.any(Number),
        [A.withoutRedis]: false,
        [A.outcome]: 'ok',
      });
      expect(run.status.code).toBe(SpanStatusCode.UNSET);
    });

    (CAN_CONTROL_REDIS ? it : it.skip)(
      "parents a run under its caller's span when Redis missed the deadline",
      async () => {
        const locks = instrumented({ tracerProvider }, { acquireTimeoutMs: 300 });
        await locks.waitUntilConnected();
        redis.pause(); // connected, silent: both acquisitions end at the deadline, on one timer
        try {
          const call = (job: string, afterMs: number) =>
            sleep(afterMs).then(() =>
              tracer.startActiveSpan(job, async (caller) => {
                await locks.runJob(job, job, 10_000, () => 'ran without a lock');
                caller.end();
              }),
            );
          await Promise.all([call('first', 0), call('second', 50)]);
        } finally {
          redis.resume();
        }
        for (const job of ['first', 'second']) {
          const run = spanNamed(`lock.run ${job}`);
          expect(run.attributes[A.withoutRedis]).toBe(true);
          expect(run.parentSpanContext?.spanId).toBe(spanNamed(job).spanContext().spanId);
        }
      },
    );

    it('marks the span of a run that threw as an error and records the exception, thrown at once or later', async () => {
      const locks = instrumented({ tracerProvider });
      const later = new TypeError('bad row');
      const atOnce = new RangeError('no rows');
      await expect(locks.withLock('later', 10_000, () => Promise.reject(later))).rejects.toBe(later);
      await expect(
        locks.withLock('at-once', 10_000, () => {
          throw atOnce;
        }),
      ).rejects.toBe(atOnce);

      for (const [key, error] of [
        ['later', later],
        ['at-once', atOnce],
      ] as const) {
        const span = spanNamed(`lock.run ${key}`);
        expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: error.message });
        expect(span.attributes).toMatchObject({ [A.outcome]: 'error', [A.errorType]: error.name });
        expect(span.events).toEqual([
          expect.objectContaining({
            name: 'exception',
            attributes: expect.objectContaining({ 'exception.type': error.name, 'exception.message': error.message }),
          }),
        ]);
      }
      expect(await locks.acquireLock('at-once', 1_000)).toBe(true); // released although the span ended early
    });

    it('reports to the global providers when none are given', async () => {
      metrics.setGlobalMeterProvider(meterProvider);
      trace.setGlobalTracerProvider(tracerProvider);
      try {
        const locks = instrumented(true);
        await locks.runJob(JOB, KEY, 10_000, () => 'ran');
        expect(valuesOf((await collect()).get('distributed_lock.runs'))).toHaveLength(1);
        spanNamed(`lock.run ${JOB}`);
      } finally {
        metrics.disable();
        trace.disable();
      }
    });

    it('refuses an openTelemetry option that is not true, false or providers', () => {
      expect(() => new LockEngine({ url: redis.url, openTelemetry: 'yes' as never })).toThrow(
        'openTelemetry must be true, false or { meterProvider?, tracerProvider? }, got "yes".',
      );
    });

    it('refuses a provider that is not one, naming the option', () => {
      const heldLocks = () => 0;
      expect(() => createLockTelemetry({ meterProvider: {} as never }, { heldLocks, logger })).toThrow(
        'openTelemetry.meterProvider must be a MeterProvider (with getMeter()), got an object (Object).',
      );
      expect(() => createLockTelemetry({ tracerProvider: 'jaeger' as never }, { heldLocks, logger })).toThrow(
        /^openTelemetry\.tracerProvider must be a TracerProvider/,
      );
    });
  });

  it('says to install @opentelemetry/api when it is missing', () => {
    jest.isolateModules(() => {
      jest.doMock('@opentelemetry/api', () => {
        throw Object.assign(new Error("Cannot find module '@opentelemetry/api'"), { code: 'MODULE_NOT_FOUND' });
      });
      type Module = typeof import('../../src/core/telemetry/open-telemetry');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const isolated = require('../../src/core/telemetry/open-telemetry') as Module;
      expect(() => isolated.createLockTelemetry(true, { heldLocks: () => 0, logger })).toThrow(
        expect.objectContaining({
          name: 'DistributedLockConfigError',
          setting: 'openTelemetry',
          message:
            'openTelemetry must be unset or false until @opentelemetry/api is installed ' +
            '(npm install @opentelemetry/api, an optional peer dependency), got true.',
        }),
      );
    });
    jest.dontMock('@opentelemetry/api');
  });
});
