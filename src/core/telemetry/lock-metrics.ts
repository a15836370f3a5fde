import type { Attributes, Meter } from '@opentelemetry/api';
import type { LockEvent, LockEventListener } from '../events/lock-events';
import { errorType, JobAttributeSets, LOCK_ATTRIBUTES } from './lock-attributes';

// Seconds, as OpenTelemetry's duration histograms are: a Redis round trip, then jobs of up to an hour.
export const ACQUIRE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
export const RUN_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** An event that names a lock or job, and what started its run. */
type NamedEvent = Extract<LockEvent, { tick: number | undefined }>;
type AcquiredEvent = Extract<LockEvent, { type: 'acquired' }>;
type RanEvent = Extract<LockEvent, { type: 'ran' }>;

/** Counters and histograms of one engine's locks and runs, fed by its events. */
export function metricsListener(meter: Meter): LockEventListener {
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

  const sets = new JobAttributeSets();
  /** A job's set for `variant`, built once; a fresh set outside a job, or with a policy's trigger and attempt. */
  const attributesOf = <E extends NamedEvent>(event: E, variant: string, build: (event: E) => Attributes) =>
    event.job === undefined || event.trigger !== undefined || event.attempt !== undefined
      ? build(event)
      : sets.of(event.job, variant, event, build);

  return (event) => {
    switch (event.type) {
      case 'acquired': {
        if (event.withoutRedis) failOpen.add(1, attributesOf(event, 'name', nameOf));
        const variant = event.withoutRedis ? 'acquired without Redis' : 'acquired';
        acquireDuration.record(event.latencyMs / 1000, attributesOf(event, variant, acquiredAttributes));
        return;
      }
      case 'skipped': {
        const attributes = nameOf(event);
        attributes[LOCK_ATTRIBUTES.skipReason] = event.reason;
        skips.add(1, attributes);
        return;
      }
      case 'ran': {
        const variant = event.outcome === 'error' ? `error ${errorType(event.error)}` : event.outcome;
        const attributes = attributesOf(event, variant, ranAttributes);
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
function nameOf(event: NamedEvent): Attributes {
  const attributes: Attributes =
    event.job === undefined ? { [LOCK_ATTRIBUTES.key]: event.key } : { [LOCK_ATTRIBUTES.job]: event.job };
  // What started the run, for jobs with a policy (a handful of values each: few series).
  if (event.trigger !== undefined) attributes[LOCK_ATTRIBUTES.trigger] = event.trigger;
  if (event.attempt !== undefined) attributes[LOCK_ATTRIBUTES.attempt] = event.attempt;
  return attributes;
}

function acquiredAttributes(event: AcquiredEvent): Attributes {
  const attributes = nameOf(event);
  attributes[LOCK_ATTRIBUTES.withoutRedis] = event.withoutRedis;
  return attributes;
}

function ranAttributes(event: RanEvent): Attributes {
  const attributes = nameOf(event);
  attributes[LOCK_ATTRIBUTES.outcome] = event.outcome;
  if (event.outcome === 'error') attributes[LOCK_ATTRIBUTES.errorType] = errorType(event.error);
  return attributes;
}

/** Every engine on one meter adds its locks to one gauge: a second callback would overwrite, not add. */
const heldLockSources = new WeakMap<Meter, Set<() => number>>();

/** Adds this engine's held locks to the `distributed_lock.held` gauge; the call returned stops that. */
export function observeHeldLocks(meter: Meter, heldLocks: () => number): () => void {
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
