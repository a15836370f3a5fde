import type { INestApplicationContext } from '@nestjs/common';
import type { CronSchedule } from '../core/jobs/cron-schedule';
import { InvalidLockArgumentError } from '../core/errors';
import type { DistributedLockTestingOptions } from './distributed-lock-testing.module';
import { InMemoryLockStore } from './in-memory-lock-store';
import { checkOccurrences, OccurrenceNotOnceError, type OccurrenceReport, type SimulatedRun } from './occurrence-check';
import { SimulatedReplica } from './simulated-replica';
import { type ProviderOverrides, withInMemoryLocks } from './with-in-memory-locks';

/** What the simulator needs of `@nestjs/testing`'s `TestingModuleBuilder` (not imported: a dev dependency of yours). */
export interface ReplicaBuilder extends ProviderOverrides {
  compile(): Promise<INestApplicationContext & { init(): Promise<unknown> }>;
}

export interface FleetSimulatorOptions {
  /** How many replicas of the app run, from 1 to 50. */
  replicas: number;
  /** Builds one replica, as a test builds the app: `() => Test.createTestingModule({ imports: [AppModule] })`. */
  app: () => ReplicaBuilder;
  /** Each replica's lock module settings (`failMode`, `shutdownTimeoutMs`, …), over the fleet's store. */
  lockOptions?: Omit<DistributedLockTestingOptions, 'store' | 'replica' | 'clock'>;
}

/** The most occurrences one check lists. */
const OCCURRENCE_LIMIT = 100_000;
const MAX_REPLICAS = 50;

/**
 * N replicas of an application in one test, over one `InMemoryLockStore` and one clock (the
 * test's fake timers: `jest.useFakeTimers({ now })` before `start`, `jest.advanceTimersByTimeAsync`
 * to move it), with faults switched on and off by the test: Redis unreachable for the fleet
 * (`redisDown()`) or for one replica (`replica(i).disconnect()`), a replica killed, frozen, shut
 * down or with its clock skewed. `expectEachOccurrenceOnce` then says whether each occurrence of a
 * job in a span completed exactly once, and if not, where it ran, twice or never.
 */
export class FleetSimulator {
  /** Every run the fleet saw end (not those of a replica killed or frozen meanwhile), oldest first. */
  readonly runs: SimulatedRun[] = [];
  private readonly schedules = new Map<string, CronSchedule>();

  private constructor(
    readonly store: InMemoryLockStore,
    readonly replicas: readonly SimulatedReplica[],
  ) {}

  /** Builds and starts `replicas` replicas of the app, one after the other. */
  static async start(options: FleetSimulatorOptions): Promise<FleetSimulator> {
    const { replicas: count, app, lockOptions = {} } = options;
    if (!Number.isInteger(count) || count < 1 || count > MAX_REPLICAS) {
      throw new InvalidLockArgumentError('replicas', count, `an integer from 1 to ${MAX_REPLICAS}`);
    }
    const store = new InMemoryLockStore();
    const replicas: SimulatedReplica[] = [];
    const fleet = new FleetSimulator(store, replicas);
    try {
      for (let i = 1; i <= count; i++) replicas.push(await fleet.startReplica(`replica-${i}`, app, lockOptions));
    } catch (error) {
      await fleet.close();
      throw error;
    }
    return fleet;
  }

  /** A replica, by its index from 0 or its name (`replica-1` is index 0). */
  replica(which: number | string): SimulatedReplica {
    const found = typeof which === 'number' ? this.replicas[which] : this.replicas.find((r) => r.name === which);
    if (!found)
      throw new InvalidLockArgumentError(
        'replica',
        which,
        `an index below ${this.replicas.length} or a replica's name`,
      );
    return found;
  }

  /** Redis becomes unreachable for the whole fleet until `redisUp()`: each replica's fail mode decides. */
  redisDown(): void {
    this.store.simulateOutage(true);
  }

  redisUp(): void {
    this.store.simulateOutage(false);
  }

  /** How each occurrence of `job` (`Class.method`) from `from` to `to` ran. */
  report(job: string, from: Date | number, to: Date | number): OccurrenceReport {
    const schedule = this.schedules.get(job);
    if (!schedule) {
      throw new InvalidLockArgumentError(
        'job',
        job,
        `a @Cron job of the app (${[...this.schedules.keys()].join(', ')})`,
      );
    }
    const [start, end] = [+from, +to];
    const occurrences = schedule.namedOccurrencesBetween(start, end, OCCURRENCE_LIMIT + 1);
    if (occurrences.length > OCCURRENCE_LIMIT) {
      throw new InvalidLockArgumentError('to', to, `at most ${OCCURRENCE_LIMIT} occurrences of ${job} after from`);
    }
    return checkOccurrences(job, start, end, occurrences, this.runs);
  }

  /**
   * Throws an `OccurrenceNotOnceError` unless each occurrence of `job` from `from` to `to`
   * completed exactly once across the fleet; its message names each one that did not, with the
   * replicas it ran on. Returns the report otherwise.
   */
  expectEachOccurrenceOnce(job: string, from: Date | number, to: Date | number): OccurrenceReport {
    const report = this.report(job, from, to);
    if (report.problems.length > 0) throw new OccurrenceNotOnceError(report);
    return report;
  }

  /** Closes every replica still running (a killed one too, with its sends still cut). */
  async close(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.shutdown()));
  }

  private async startReplica(
    name: string,
    app: () => ReplicaBuilder,
    lockOptions: NonNullable<FleetSimulatorOptions['lockOptions']>,
  ): Promise<SimulatedReplica> {
    const replica = new SimulatedReplica(name, (run) => this.runs.push(run));
    const builder = withInMemoryLocks(app(), {
      ...lockOptions,
      store: this.store.replicaView(() => replica.reachability),
      replica: name,
      clock: replica.clock,
      onEvent: (event) => {
        replica.onEvent(event);
        lockOptions.onEvent?.(event);
      },
    });
    const context = await builder.compile();
    replica.app = context;
    for (const [job, schedule] of replica.watchJobs(context)) this.schedules.set(job, schedule);
    try {
      await context.init();
    } catch (error) {
      await context.close();
      throw error;
    }
    return replica;
  }
}
