import { CronSchedule } from '../../src/core/jobs/cron-schedule';
import type { LedgerEntry, LedgerRead } from '../../src/core/policies/ledger';
import { missedOccurrences, retryDue } from '../../src/core/policies/occurrence-rules';

// Pure rules over a ledger as read; the claims that make them safe run against Redis elsewhere.
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const everyMinute = () => new CronSchedule('0 * * * * *', { timeZone: 'UTC' });
const entry = (
  tick: number,
  status: LedgerEntry['status'],
  trigger: LedgerEntry['trigger'] = 'schedule',
  attempt = 1,
  at = tick,
): LedgerEntry => ({
  tick,
  status,
  trigger,
  attempt,
  at,
  holder: undefined,
  raw: '',
});
const ledger = (entries: LedgerEntry[], since = T0 - 60 * MINUTE, served?: number, now = T0 + 30_000): LedgerRead => ({
  since,
  now,
  served,
  entries,
});

describe('missedOccurrences', () => {
  const latest = { windowMs: 10 * MINUTE, runs: 'latest' as const, max: 10 };
  const all = { windowMs: 10 * MINUTE, runs: 'all' as const, max: 3 };
  const now = T0 + 30_000; // 12:00:30

  it("'latest': the most recent occurrence no one started, when none after it ran", () => {
    const plan = missedOccurrences(ledger([entry(T0 - 2 * MINUTE, 'ok')]), latest, everyMinute(), now);
    expect(plan.run).toEqual([T0]);
  });

  it("'latest': nothing when the most recent ran, whatever was missed before it", () => {
    const plan = missedOccurrences(ledger([entry(T0, 'running')]), latest, everyMinute(), now);
    expect(plan.run).toEqual([]);
  });

  it('leaves alone what a pause or an overlap skipped, and the latest tick the schedule served', () => {
    for (const read of [
      ledger([entry(T0, 'paused', 'schedule', 0)]),
      ledger([entry(T0, 'skipped', 'schedule', 0)]),
      ledger([], undefined, T0),
    ]) {
      expect(missedOccurrences(read, latest, everyMinute(), now).run).toEqual([]);
    }
  });

  it('runs nothing from before the current definition was first seen, nor past the window', () => {
    expect(missedOccurrences(ledger([], T0), all, everyMinute(), now).run).toEqual([]);
    const wide = { ...all, max: 100 };
    const plan = missedOccurrences(ledger([], T0 - 60 * MINUTE), { ...wide, windowMs: 3 * MINUTE }, everyMinute(), now);
    expect(plan.run).toEqual([T0 - 2 * MINUTE, T0 - MINUTE, T0]);
  });

  it('waits a moment before calling an occurrence missed: its timer may still be on its way', () => {
    expect(missedOccurrences(ledger([]), latest, everyMinute(), T0 + 2_000).run).toEqual([T0 - MINUTE]);
  });

  it("'all': the newest `max`, oldest first, and how many it left out", () => {
    const plan = missedOccurrences(ledger([]), all, everyMinute(), now);
    expect(plan.run).toEqual([T0 - 2 * MINUTE, T0 - MINUTE, T0]);
    expect(plan.dropped).toBe(7); // 11:51 to 11:57
    expect(plan.droppedThrough).toBe(T0 - 3 * MINUTE);
  });

  it("'all': counts what was caught up already, so replicas looking at once choose the same occurrences", () => {
    const caughtUp = ledger([entry(T0 - MINUTE, 'running', 'catch-up')]);
    const plan = missedOccurrences(caughtUp, all, everyMinute(), now);
    expect(plan.run).toEqual([T0 - 2 * MINUTE, T0]);
    expect(plan.dropped).toBe(7);
  });

  it("'all': leaves alone what an earlier look left out", () => {
    const plan = missedOccurrences(ledger([]), all, everyMinute(), now, T0 - 3 * MINUTE);
    expect(plan.dropped).toBe(0);
  });
});

describe('retryDue', () => {
  const retry = { attempts: 3, backoffMs: 10_000, maxBackoffMs: 60_000 };

  it('owes the next attempt of a failure once its backoff has passed, by the ledger clock', () => {
    const failed = entry(T0, 'error', 'schedule', 1, T0 + 1_000);
    expect(retryDue(ledger([failed], undefined, undefined, T0 + 5_000), retry, everyMinute(), T0 + 5_000)).toEqual([]);
    expect(retryDue(ledger([failed], undefined, undefined, T0 + 11_000), retry, everyMinute(), T0 + 11_000)).toEqual([
      { tick: T0, attempt: 2 },
    ]);
  });

  it('owes nothing once attempts are used up, or once the next occurrence is due', () => {
    const last = entry(T0, 'error', 'retry', 3, T0 + 1_000);
    expect(retryDue(ledger([last], undefined, undefined, T0 + 30_000), retry, everyMinute(), T0 + 30_000)).toEqual([]);
    const first = entry(T0, 'error', 'schedule', 1, T0 + 1_000);
    expect(retryDue(ledger([first], undefined, undefined, T0 + 61_000), retry, everyMinute(), T0 + 61_000)).toEqual([]);
  });

  it('owes nothing for runs that succeeded or are still going', () => {
    const read = ledger([entry(T0, 'ok'), entry(T0 - MINUTE, 'running')], undefined, undefined, T0 + 30_000);
    expect(retryDue(read, retry, everyMinute(), T0 + 30_000)).toEqual([]);
  });
});
