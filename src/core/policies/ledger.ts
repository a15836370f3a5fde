/**
 * The ledger of a job with a policy: per occurrence, its latest attempt, what started it and how it
 * stands. Claiming attempt n of an occurrence is atomic in the store, so each (occurrence, attempt)
 * runs at most once across the fleet; where it lives is `keys.ts`.
 */

/** What started a run. A record or event without one was started by the schedule, as attempt 1. */
export type RunTrigger = 'schedule' | 'catch-up' | 'retry' | 'recovery' | 'manual';

/**
 * Where an occurrence's latest attempt stands: running, or how it ended; or, as attempt 0, why the
 * schedule did not run it: `paused`, or `skipped` because the lock was held (an earlier run still
 * going: the overlap policy `skip`), or `buffered` to run once it is released (`buffer-one`).
 */
export type LedgerStatus = 'running' | 'ok' | 'error' | 'lost' | 'abandoned' | 'paused' | 'skipped' | 'buffered';

/** One occurrence's latest attempt, as the ledger keeps it. */
export interface LedgerEntry {
  readonly tick: number;
  readonly attempt: number;
  readonly status: LedgerStatus;
  readonly trigger: RunTrigger;
  /** When that attempt started or ended (ms since the epoch, by Redis's clock). */
  readonly at: number;
  /** While `running`: the instance running it (see `INSTANCE_ID`), whose heartbeat says it is alive. */
  readonly holder: string | undefined;
  /** The value as stored: a recovery claim replaces exactly this one. */
  readonly raw: string;
}

/**
 * The ledger value of an attempt: `<attempt>|<status>|<trigger>|<at>`, and `|<holder>` while
 * running; the scripts read its prefix.
 */
export function ledgerValue(attempt: number, status: LedgerStatus, trigger: RunTrigger, at: number): string {
  return `${attempt}|${status}|${trigger}|${at}`;
}

/** A ledger value read back; undefined for one no replica wrote. */
export function parseLedgerValue(tick: number, value: string): LedgerEntry | undefined {
  const [attempt, status, trigger, at, holder] = value.split('|');
  if (attempt === undefined || status === undefined || trigger === undefined) return undefined;
  return {
    tick,
    attempt: Number(attempt),
    status: status as LedgerStatus,
    trigger: trigger as RunTrigger,
    at: Number(at),
    holder: holder || undefined,
    raw: value,
  };
}

/** How a policy's run asks to claim its occurrence. */
export interface OccurrenceClaim {
  readonly occurrencesKey: string;
  readonly attemptsKey: string;
  /** `ledgerMember(tick, job)`. */
  readonly member: string;
  readonly trigger: RunTrigger;
  /**
   * From 1. Attempt n > 1 of a `retry` is granted only after attempt n − 1 ended in `error`; of a
   * `recovery`, only while the ledger still holds `expected` (attempt n − 1 running on a dead instance).
   */
  readonly attempt: number;
  /** A recovery's precondition: the ledger value it replaces ('' otherwise). */
  readonly expected: string;
  /** This process's instance id, entered with the running attempt. */
  readonly holder: string;
  /** `overlap: 'buffer-one'`: a scheduled claim that finds the lock held buffers its occurrence. */
  readonly bufferIfHeld: boolean;
  /** How long the ledger keeps what this claim writes (the state's retention and the ahead bound). */
  readonly keepMs: number;
}

/** An attempt's end, written to the ledger (and sent again after a reconnection until Redis has it). */
export interface LedgerWrite {
  readonly occurrencesKey: string;
  readonly attemptsKey: string;
  readonly member: string;
  readonly tick: number;
  readonly attempt: number;
  readonly status: LedgerStatus;
  readonly trigger: RunTrigger;
  /** How long the ledger keeps it (the state's retention). */
  readonly keepMs: number;
}

/** What a look at the ledger finds for one job: since when its current definition exists, and its entries. */
export interface LedgerRead {
  /** When a replica first looked with the job's current definition (ms since the epoch, Redis's clock). */
  readonly since: number;
  /** Redis's clock at the read (ms since the epoch). */
  readonly now: number;
  /** The latest occurrence a scheduled run served (the state's tick field), if any. */
  readonly served: number | undefined;
  /** The job's entries from the asked start on, oldest first. */
  readonly entries: readonly LedgerEntry[];
}

/** A ledger look as the store is asked for it. */
export interface LedgerQuery {
  readonly stateKey: string;
  readonly occurrencesKey: string;
  readonly attemptsKey: string;
  readonly job: string;
  /** The state field of the latest tick served by the schedule. */
  readonly tickField: string;
  readonly sinceField: string;
  /** The job's current definition (schedule and zone): a new one starts a new `since`. */
  readonly definition: string;
  /** Read entries from this tick on (ms since the epoch). */
  readonly from: number;
  /** At most this many entries. */
  readonly limit: number;
  readonly keepMs: number;
}
