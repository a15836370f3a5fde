import { parseLedgerMember } from '../core/keys';
import {
  type LedgerEntry,
  type LedgerRead,
  type LedgerQuery,
  type LedgerWrite,
  ledgerValue,
  type OccurrenceClaim,
  parseLedgerValue,
} from '../core/policies/ledger';

/** A lock name's ledger: member → the occurrence's tick and latest attempt, as Redis keeps it. */
interface Ledger {
  readonly entries: Map<string, { readonly tick: number; value: string }>;
  expiresAt: number;
}

const BUFFERED = '0|buffered|';

/**
 * The occurrence ledgers of jobs with a policy, and the instances' heartbeats, in memory, with the
 * semantics of the Redis scripts (`redis/scripts/claim-occurrence.ts`, `ledger-scripts.ts`). The
 * in-memory store decides a claim with `refuses`, then writes what the script writes.
 */
export class InMemoryLedgers {
  private readonly ledgers = new Map<string, Ledger>();
  /** Heartbeat key → when it expires. */
  private readonly heartbeats = new Map<string, number>();
  /** `<attempts key>\0<buffered field>` → the member of the occurrence that waits (`buffer-one`). */
  private readonly buffered = new Map<string, string>();
  /** `<state key>\0<since field>` → `<definition>|<ms>`: when each job's current definition was first seen. */
  private readonly since = new Map<string, string>();

  constructor(private readonly now: () => number) {}

  clear(): void {
    this.ledgers.clear();
    this.heartbeats.clear();
    this.buffered.clear();
    this.since.clear();
  }

  /** The latest attempt of `claim`'s occurrence, as stored. */
  current(claim: OccurrenceClaim): string | undefined {
    return this.live(claim.attemptsKey)?.entries.get(claim.member)?.value;
  }

  /** Whether the script refuses `claim` as served, given the ledger and the schedule's latest tick. */
  refuses(claim: OccurrenceClaim, tick: number, served: number | undefined): boolean {
    const current = this.current(claim);
    const { trigger, attempt, expected } = claim;
    if (trigger === 'schedule' && expected === 'buffered') return !current?.startsWith(BUFFERED);
    if (trigger === 'schedule') return current !== undefined || (served !== undefined && served >= tick);
    if (attempt === 1) return current !== undefined || served === tick;
    if (trigger === 'recovery') return current !== expected;
    return !current?.startsWith(`${attempt - 1}|error|`);
  }

  /** A scheduled claim found the job paused: entered as `paused`, unless the ledger knows it. */
  paused(claim: OccurrenceClaim, tick: number): void {
    const ledger = this.ledgerFor(claim.attemptsKey, claim.keepMs);
    if (claim.trigger === 'schedule' && !ledger.entries.has(claim.member)) {
      ledger.entries.set(claim.member, { tick, value: ledgerValue(0, 'paused', 'schedule', this.now()) });
    }
  }

  /** A claim found the lock held: a scheduled one is entered as skipped, or buffered. Whether it was buffered. */
  held(claim: OccurrenceClaim, tick: number, bufferedField: string): boolean {
    if (claim.trigger !== 'schedule' || claim.expected === 'buffered') return false;
    const slot = `${claim.attemptsKey}\u0000${bufferedField}`;
    const waiting = this.buffered.get(slot);
    const ledger = this.ledgerFor(claim.attemptsKey, claim.keepMs);
    const buffer = claim.bufferIfHeld && !(waiting && ledger.entries.get(waiting)?.value.startsWith(BUFFERED));
    const value = ledgerValue(0, buffer ? 'buffered' : 'skipped', 'schedule', this.now());
    ledger.entries.set(claim.member, { tick, value });
    if (buffer) this.buffered.set(slot, claim.member);
    return buffer;
  }

  /** A claim was granted: its attempt runs on `claim.holder`. */
  granted(claim: OccurrenceClaim, tick: number, bufferedField: string): void {
    const value = `${ledgerValue(claim.attempt, 'running', claim.trigger, this.now())}|${claim.holder}`;
    this.ledgerFor(claim.attemptsKey, claim.keepMs).entries.set(claim.member, { tick, value });
    if (claim.expected === 'buffered') this.buffered.delete(`${claim.attemptsKey}\u0000${bufferedField}`);
  }

  /** As CANCEL_CLAIM: the attempt goes back while the ledger still says it is running. */
  cancel(claim: OccurrenceClaim, bufferedField: string, ours: boolean): void {
    const { attempt, member, expected } = claim;
    const ledger = this.live(claim.attemptsKey);
    const entry = ledger?.entries.get(member);
    if (!entry || !entry.value.startsWith(`${attempt}|running|`)) return;
    if (ours) {
      // Occurrences skipped since this grant because it held the lock overlapped no run.
      const grantedAt = Number(entry.value.split('|')[3]);
      for (const [other, { tick, value }] of ledger!.entries) {
        const [, status, , at] = value.split('|');
        if (tick > entry.tick && status === 'skipped' && Number(at) >= grantedAt) ledger!.entries.delete(other);
      }
    }
    if (expected !== '' && expected !== 'buffered') entry.value = expected;
    else if (expected === 'buffered') {
      entry.value = ledgerValue(0, 'buffered', 'schedule', 0);
      this.buffered.set(`${claim.attemptsKey}\u0000${bufferedField}`, member);
    } else if (attempt > 1) entry.value = ledgerValue(attempt - 1, 'error', attempt > 2 ? 'retry' : 'schedule', 0);
    else ledger!.entries.delete(member);
  }

  settle(write: LedgerWrite): void {
    const ledger = this.ledgerFor(write.attemptsKey, write.keepMs);
    const current = ledger.entries.get(write.member);
    if (current && parseInt(current.value, 10) > write.attempt) return;
    const value = ledgerValue(write.attempt, write.status, write.trigger, this.now());
    ledger.entries.set(write.member, { tick: write.tick, value });
  }

  /** The job's entries of `query` (see `LockStore.readLedger`), `served` read from the state. */
  read(query: LedgerQuery, served: number | undefined): LedgerRead {
    const slot = `${query.stateKey}\u0000${query.sinceField}`;
    const prefix = `${query.definition}|`;
    const stamped = this.since.get(slot);
    let since = this.now();
    if (stamped?.startsWith(prefix)) since = Number(stamped.slice(prefix.length));
    else this.since.set(slot, prefix + since);
    const entries: LedgerEntry[] = [];
    for (const [member, { tick, value }] of this.live(query.attemptsKey)?.entries ?? []) {
      if (tick < query.from || parseLedgerMember(member).job !== query.job) continue;
      const entry = parseLedgerValue(tick, value);
      if (entry) entries.push(entry);
    }
    entries.sort((a, b) => a.tick - b.tick);
    return { since, now: this.now(), served, entries: entries.slice(0, query.limit) };
  }

  beat(key: string, ttlMs: number): void {
    this.heartbeats.set(key, this.now() + ttlMs);
  }

  alive(keys: readonly string[]): boolean[] {
    return keys.map((key) => (this.heartbeats.get(key) ?? 0) > this.now());
  }

  /** The live ledger of `attemptsKey`, created when absent, kept `keepMs` from now (stale entries dropped). */
  private ledgerFor(attemptsKey: string, keepMs: number): Ledger {
    const ledger = this.live(attemptsKey) ?? { entries: new Map(), expiresAt: 0 };
    this.ledgers.set(attemptsKey, ledger);
    const now = this.now();
    ledger.expiresAt = now + keepMs;
    for (const [member, { tick }] of ledger.entries) if (tick < now - keepMs) ledger.entries.delete(member);
    return ledger;
  }

  private live(attemptsKey: string): Ledger | undefined {
    const ledger = this.ledgers.get(attemptsKey);
    if (ledger && ledger.expiresAt <= this.now()) {
      this.ledgers.delete(attemptsKey);
      return undefined;
    }
    return ledger;
  }
}
