import type { Cluster, Redis } from 'ioredis';
import type { RunHistoryWrite } from '../lock-store';
import type { LedgerWrite } from '../policies/ledger';
import { type ConnectionMonitor, NO_REPLY, REFUSED } from './connection/connection-monitor';
import { sendSettleOccurrence } from './scripts';

/**
 * What a replica writes for the operators apart from its locks: run records of runs whose lock
 * was not released with them, job declarations, which it sends again after every reconnection, and
 * the ends of policy runs, sent again after each reconnection until Redis acknowledges them.
 */
export class FleetWrites {
  /** What this replica declared (hash key → fields), sent again on every reconnection. */
  private readonly declarations = new Map<string, Declared>();
  /** Ledger writes Redis has not acknowledged yet, by key and member: only the latest of each counts. */
  private readonly unsettled = new Map<string, LedgerWrite>();

  constructor(
    private readonly client: Redis | Cluster,
    private readonly monitor: ConnectionMonitor,
  ) {}

  recordRun(record: RunHistoryWrite): Promise<void> {
    return this.monitor.call(
      () =>
        this.client
          .multi()
          .xadd(record.streamKey, 'MAXLEN', '~', record.maxLength, '*', ...record.fields)
          .pexpire(record.streamKey, record.retentionMs)
          .exec(),
      () => undefined,
      record.streamKey,
    );
  }

  /**
   * Sets the fields now if connected, and again after every reconnection (a Redis restarted
   * without persistence, or a failover, may have lost them). Never waits for a connection: a
   * declaration must not hold up a boot while Redis is down.
   */
  declare(key: string, fields: readonly string[], onlyWhereAbsent = false): Promise<void> {
    const declared = this.declarations.get(key) ?? { fields: new Map<string, string>(), onlyWhereAbsent };
    for (let i = 0; i + 1 < fields.length; i += 2) declared.fields.set(fields[i], fields[i + 1]);
    this.declarations.set(key, declared);
    return this.monitor.isReady ? this.send(key, declared) : Promise.resolve();
  }

  /**
   * Writes an attempt's end to its ledger; kept until acknowledged, so a run that ended while Redis
   * was down is recorded once it is back (and not run again by another replica).
   */
  settleOccurrence(write: LedgerWrite): Promise<void> {
    const id = `${write.attemptsKey}\u0000${write.member}`;
    this.unsettled.set(id, write);
    // The release of the run's lock follows in this tick (or, after a reconnection, the other
    // ledger writes): one write carries them, and Redis runs them back to back.
    this.monitor.holdWritesThisTick();
    return this.monitor.call(
      (afterNoScript: boolean) => sendSettleOccurrence(this.client, afterNoScript, write),
      (reply) => {
        if (reply !== NO_REPLY && reply !== REFUSED && this.unsettled.get(id) === write) this.unsettled.delete(id);
      },
      write.attemptsKey,
    );
  }

  /** Sends every declaration and unacknowledged ledger write again: the connection is new. */
  redeclare(): void {
    for (const [key, fields] of this.declarations) void this.send(key, fields);
    for (const write of [...this.unsettled.values()]) void this.settleOccurrence(write);
  }

  private send(key: string, { fields, onlyWhereAbsent }: Declared): Promise<void> {
    const send = (): Promise<unknown> =>
      onlyWhereAbsent
        ? Promise.all([...fields].map(([field, value]) => this.client.hsetnx(key, field, value)))
        : this.client.hset(key, Object.fromEntries(fields));
    return this.monitor.call(send, () => undefined, key);
  }
}

/** Fields a replica declared in one hash, and whether they are set only where absent (first seen). */
interface Declared {
  readonly fields: Map<string, string>;
  readonly onlyWhereAbsent: boolean;
}
