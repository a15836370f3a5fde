import type { Cluster, Redis } from 'ioredis';
import { ComputedLockNameError, InvalidLockArgumentError, UnknownJobError } from '../errors';
import { jobNamesKey, jobsFirstDeclaredKey, jobsKey, jobTickField, lockKeys } from '../keys';
import { expectations } from '../validation';
import { type JobRecord, parseJobRecord, parsePause } from './fleet-records';
import type { PausedJob } from './fleet-reports';
import { hashEntries } from './redis-scan';

/** Reads what replicas declared of their jobs (`fleet-records.ts`), for the fleet's readers. */
export class JobRecordReader {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly keyPrefix: string,
  ) {}

  /**
   * The name `job` is stored under: itself when declared so (`Class.method`), else the job a
   * schedule names `job` (`@Cron({ name })`); `job` as given when neither (`one` then says unknown).
   */
  async storedName(job: string): Promise<string> {
    if (!expectations.nonEmptyString.test(job)) throw new InvalidLockArgumentError('job', job, 'a non-empty string');
    const [declared, named] = await Promise.all([
      this.client.hexists(jobsKey(this.keyPrefix), job),
      this.client.hget(jobNamesKey(this.keyPrefix), job),
    ]);
    return declared === 1 || named === null ? job : named;
  }

  /** The declared record of `job` (by its stored name); an `UnknownJobError` listing the known jobs if none. */
  async one(job: string): Promise<JobRecord> {
    if (!expectations.nonEmptyString.test(job)) throw new InvalidLockArgumentError('job', job, 'a non-empty string');
    const record = parseJobRecord(await this.client.hget(jobsKey(this.keyPrefix), job));
    if (record) return record;
    const known = [...(await this.all())].map(([name, { scheduleName }]) =>
      scheduleName ? `${scheduleName} (${name})` : name,
    );
    throw new UnknownJobError(job, known.sort(), this.keyPrefix);
  }

  /** Every job declared, by name. */
  async all(): Promise<Map<string, JobRecord>> {
    const records = new Map<string, JobRecord>();
    for (const [name, value] of await hashEntries(this.client, jobsKey(this.keyPrefix))) {
      const record = parseJobRecord(value);
      if (record) records.set(name, record);
    }
    return records;
  }

  /**
   * The lock name of `job`: `given` when set (a job whose name is computed per call), else its
   * declared one; a `ComputedLockNameError` with `advice` when it has none.
   */
  async lockNameOf(job: string, given: string | undefined, advice: string, known?: JobRecord): Promise<string> {
    const record = known ?? (await this.one(job));
    if (given !== undefined) {
      if (!expectations.nonEmptyString.test(given)) {
        throw new InvalidLockArgumentError('key', given, 'a non-empty string');
      }
      return given;
    }
    if (record.key === null) throw new ComputedLockNameError(job, advice);
    return record.key;
  }

  /** The jobs paused fleet-wide, with their pause records, sorted by name: one read per job with a fixed lock name. */
  async paused(): Promise<PausedJob[]> {
    const named = [...(await this.all())]
      .filter(([, record]) => record.key !== null)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    const pauses = await Promise.all(
      named.map(([name, record]) => this.client.hget(lockKeys(this.keyPrefix, record.key!).paused, name)),
    );
    return named.flatMap(([name], i) => {
      const pause = parsePause(pauses[i]);
      return pause ? [{ name, pause }] : [];
    });
  }

  /** When each job was first declared. */
  async firstDeclared(): Promise<Map<string, number>> {
    const entries = await hashEntries(this.client, jobsFirstDeclaredKey(this.keyPrefix));
    return new Map(entries.map(([name, at]) => [name, Number(at)]));
  }

  /** The latest occurrence a replica served of `job`, from its lock name's state hash. */
  async servedTick(stateKey: string, job: string): Promise<number | undefined> {
    const tick = await this.client.hget(stateKey, jobTickField(job));
    return tick === null ? undefined : Number(tick);
  }
}
