import { CronJob } from 'cron';
import { CronSchedule } from '../../src/core/jobs/cron-schedule';
import type { DaylightSavingPolicy } from '../../src/core/jobs/daylight-saving';

// Pure tests of how occurrences are named across daylight-saving changes (2026: Europe/Paris
// goes forward on 29 March at 02:00 and back on 25 October at 03:00; America/New_York on 8 March
// at 02:00 and 1 November at 02:00), beside what the `cron` package that @nestjs/schedule uses
// fires under Jest's fake timers. A run against Redis under libfaketime is in dst-faketime.processes.spec.ts.
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** When a `cron` CronJob fires from `from` to `to` (UTC ISO), driven by fake timers. */
function cronFirings(expression: string, timeZone: string, from: string, to: string): string[] {
  jest.useFakeTimers({ now: new Date(from) });
  const fired: string[] = [];
  const job = CronJob.from({
    cronTime: expression,
    timeZone,
    onTick: () => void fired.push(iso(Date.now())),
    start: true,
  });
  jest.advanceTimersByTime(Date.parse(to) - Date.parse(from));
  job.stop();
  jest.useRealTimers();
  return fired;
}

/** The occurrences from `from` to `to` as a job with `dst` names them. */
function named(expression: string, timeZone: string, from: string, to: string, dst?: DaylightSavingPolicy): string[] {
  const plain = new CronSchedule(expression, { timeZone });
  const schedule = dst ? plain.withDaylightSaving(dst) : plain;
  return schedule.namedOccurrencesBetween(Date.parse(from), Date.parse(to), 100).map(iso);
}

describe('daylight saving: the cron engine and the occurrences a job runs', () => {
  describe('Europe/Paris, 02:30 daily (0 30 2 * * *)', () => {
    const spring = ['0 30 2 * * *', 'Europe/Paris', '2026-03-28T00:00:00Z', '2026-03-30T12:00:00Z'] as const;
    const autumn = ['0 30 2 * * *', 'Europe/Paris', '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z'] as const;

    it('cron fires the skipped 02:30 at 03:00 (the end of the gap), and the repeated 02:30 once', () => {
      expect(cronFirings(...spring)).toEqual(['2026-03-28T01:30:00Z', '2026-03-29T01:00:00Z', '2026-03-30T00:30:00Z']);
      expect(cronFirings(...autumn)).toEqual(['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z']);
    });

    it("springForward: 'run-at-end-of-gap' runs it at 03:00, as cron fires it; 'skip' never runs it", () => {
      expect(named(...spring, { springForward: 'run-at-end-of-gap' })).toEqual(cronFirings(...spring));
      expect(named(...spring, { springForward: 'skip' })).toEqual(['2026-03-28T01:30:00Z', '2026-03-30T00:30:00Z']);
    });

    it("fallBack: 'once' runs the repeated 02:30 once; 'twice' runs its second pass too (01:30Z), which cron does not fire", () => {
      expect(named(...autumn, { fallBack: 'once' })).toEqual(['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z']);
      expect(named(...autumn, { fallBack: 'twice' })).toEqual([
        '2026-10-25T00:30:00Z',
        '2026-10-25T01:30:00Z',
        '2026-10-26T01:30:00Z',
      ]);
    });
  });

  describe('Europe/Paris, every 15 minutes (0 */15 * * * *), through the changed hour', () => {
    const spring = ['0 */15 * * * *', 'Europe/Paris', '2026-03-29T00:40:00Z', '2026-03-29T01:20:00Z'] as const;
    const autumn = ['0 */15 * * * *', 'Europe/Paris', '2026-10-25T00:40:00Z', '2026-10-25T02:05:00Z'] as const;

    it('cron fires no 02:xx on the day the clocks go forward, and both passes of 02:00 to 02:45 when they go back', () => {
      expect(cronFirings(...spring)).toEqual(['2026-03-29T00:45:00Z', '2026-03-29T01:00:00Z', '2026-03-29T01:15:00Z']);
      expect(cronFirings(...autumn)).toEqual([
        '2026-10-25T00:45:00Z', // 02:45 (+02:00)
        '2026-10-25T01:00:00Z', // 02:00 (+01:00), the second pass
        '2026-10-25T01:15:00Z',
        '2026-10-25T01:30:00Z',
        '2026-10-25T01:45:00Z',
        '2026-10-25T02:00:00Z', // 03:00 (+01:00)
      ]);
    });

    it("springForward: either option runs 03:00, the schedule's own, once: the skipped 02:xx collapse into it or are skipped", () => {
      for (const springForward of ['run-at-end-of-gap', 'skip'] as const) {
        expect(named(...spring, { springForward })).toEqual(cronFirings(...spring));
      }
    });

    it("fallBack: 'once' names each second pass after its first, so the repeated quarter-hours run once; 'twice' runs both", () => {
      // From 00:40Z: the second passes of 02:00 to 02:30 (01:00Z to 01:30Z) are named after their
      // first passes (00:00Z to 00:30Z, before the window); 02:45 (00:45Z) and 03:00 run once.
      expect(named(...autumn, { fallBack: 'once' })).toEqual([
        '2026-10-25T00:00:00Z',
        '2026-10-25T00:15:00Z',
        '2026-10-25T00:30:00Z',
        '2026-10-25T00:45:00Z',
        '2026-10-25T02:00:00Z',
      ]);
      expect(named(...autumn, { fallBack: 'twice' })).toEqual(cronFirings(...autumn));
    });
  });

  describe('America/New_York', () => {
    const spring = ['0 30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', '2026-03-09T12:00:00Z'] as const;
    const autumn = ['0 30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', '2026-11-02T12:00:00Z'] as const;

    it('cron fires the skipped 02:30 at 03:00, and the repeated 01:30 once', () => {
      expect(cronFirings(...spring)).toEqual(['2026-03-08T07:00:00Z', '2026-03-09T06:30:00Z']);
      expect(cronFirings(...autumn)).toEqual(['2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z']);
    });

    it('each option, as in Paris', () => {
      expect(named(...spring, { springForward: 'run-at-end-of-gap' })).toEqual(cronFirings(...spring));
      expect(named(...spring, { springForward: 'skip' })).toEqual(['2026-03-09T06:30:00Z']);
      expect(named(...autumn, { fallBack: 'once' })).toEqual(cronFirings(...autumn));
      expect(named(...autumn, { fallBack: 'twice' })).toEqual([
        '2026-11-01T05:30:00Z',
        '2026-11-01T06:30:00Z',
        '2026-11-02T06:30:00Z',
      ]);
    });
  });

  it('a run the engine fires is named as the policy says (what the ledger then keeps once)', () => {
    const schedule = new CronSchedule('0 */15 * * * *', { timeZone: 'Europe/Paris' }).withDaylightSaving({
      fallBack: 'once',
    });
    const secondPass = Date.parse('2026-10-25T01:30:00Z'); // 02:30 (+01:00)
    expect(iso(schedule.dstName(schedule.occurrenceAt(secondPass)!)!)).toBe('2026-10-25T00:30:00Z');
    const skip = new CronSchedule('0 30 2 * * *', { timeZone: 'Europe/Paris' }).withDaylightSaving({
      springForward: 'skip',
    });
    expect(skip.dstName(Date.parse('2026-03-29T01:00:00Z'))).toBeUndefined();
    expect(skip.dstName(Date.parse('2026-03-30T00:30:00Z'))).toBe(Date.parse('2026-03-30T00:30:00Z'));
  });
});
