import { CronTime } from 'cron';
import { CronSchedule, cronTick, EARLY_FIRING_TOLERANCE_MS } from '../../src';

const at = (iso: string): number => Date.parse(iso);

describe('cronTick: the occurrence a cron callback serves, named from its schedule', () => {
  const EVERY_5_S = '*/5 * * * * *';

  it.each([
    ['on time', 0],
    ['a few ms late', 7],
    ['700 ms late (a busy event loop)', 700],
    ['4.9 s late', 4_900],
    [`up to ${EARLY_FIRING_TOLERANCE_MS} ms early`, -EARLY_FIRING_TOLERANCE_MS],
  ])('names the occurrence when the callback fires %s', (_case, offsetMs) => {
    const occurrence = at('2026-11-23T06:00:05.000Z');
    expect(cronTick(EVERY_5_S, { now: occurrence + offsetMs })).toBe(occurrence);
    expect(cronTick(EVERY_5_S, { now: new Date(occurrence + offsetMs) })).toBe(occurrence);
  });

  it('names the next occurrence once it has come, so a very late callback serves that one', () => {
    expect(cronTick(EVERY_5_S, { now: at('2026-11-23T06:00:10.000Z') })).toBe(at('2026-11-23T06:00:10.000Z'));
  });

  it('finds the latest occurrence of sparse schedules: daily, monthly', () => {
    expect(cronTick('0 0 6 * * *', { now: at('2026-11-23T17:45:12.345Z'), timeZone: 'UTC' })).toBe(
      at('2026-11-23T06:00:00.000Z'),
    );
    expect(cronTick('0 30 2 1 * *', { now: at('2026-11-23T17:45:12.345Z'), timeZone: 'UTC' })).toBe(
      at('2026-11-01T02:30:00.000Z'),
    );
  });

  it('reads the expression in the time zone or UTC offset given, as @nestjs/schedule does', () => {
    const now = at('2026-11-23T23:00:00.000Z'); // 08:00 the next day in Tokyo
    expect(cronTick('0 0 6 * * *', { now, timeZone: 'Asia/Tokyo' })).toBe(at('2026-11-23T21:00:00.000Z'));
    expect(cronTick('0 0 6 * * *', { now, utcOffset: 9 * 60 })).toBe(at('2026-11-23T21:00:00.000Z'));
    expect(cronTick('0 0 6 * * *', { now, utcOffset: -5 * 60 })).toBe(at('2026-11-23T11:00:00.000Z'));
  });

  it('throws the parser error for a malformed expression', () => {
    expect(() => cronTick('61 * * * * *')).toThrow();
  });
});

describe('CronSchedule', () => {
  it('has one occurrence for a one-off date, and none before it', () => {
    const date = new Date('2026-11-23T06:00:00.000Z');
    const schedule = new CronSchedule(date);
    expect(schedule.occurrenceAt(date.getTime() - 1_000)).toBeUndefined();
    expect(schedule.occurrenceAt(date.getTime() + 60_000)).toBe(date.getTime());
  });

  it('reports the period between the occurrence found and the next', () => {
    const schedule = new CronSchedule('0 */10 * * * *', { timeZone: 'UTC' });
    expect(schedule.occurrenceAt(at('2026-11-23T06:14:00.000Z'))).toBe(at('2026-11-23T06:10:00.000Z'));
    expect(schedule.periodMs).toBe(600_000);
  });

  it('answers from the occurrence it found while the next has not come, and moves on after it', () => {
    const schedule = new CronSchedule('*/2 * * * * *', { timeZone: 'UTC' });
    expect(schedule.occurrenceAt(at('2026-11-23T06:00:00.100Z'))).toBe(at('2026-11-23T06:00:00.000Z'));
    expect(schedule.occurrenceAt(at('2026-11-23T06:00:01.900Z'))).toBe(at('2026-11-23T06:00:00.000Z'));
    expect(schedule.occurrenceAt(at('2026-11-23T06:00:02.000Z'))).toBe(at('2026-11-23T06:00:02.000Z'));
    expect(schedule.occurrenceAt(at('2026-11-23T05:59:59.000Z'))).toBe(at('2026-11-23T05:59:58.000Z'));
  });

  it.each([
    ['every 5 s', '*/5 * * * * *', 5_000],
    ['hourly', '0 0 * * * *', 3_600_000],
    ['daily at 09:00 in Paris', '0 0 9 * * *', 86_400_000],
  ])(
    'names each next occurrence of a job run on time (%s) with one step of the parser, as a fresh schedule would',
    (_name, expression, periodMs) => {
      const schedule = new CronSchedule(expression, { timeZone: 'Europe/Paris' });
      const first = new CronSchedule(expression, { timeZone: 'Europe/Paris' }).occurrenceAt(
        at('2026-11-23T06:00:00Z'),
      )!;
      schedule.occurrenceAt(first + 3);
      const steps = jest.spyOn(CronTime.prototype, 'getNextDateFrom');
      try {
        for (let run = 1; run <= 5; run++) {
          const occurrence = first + run * periodMs;
          const named = schedule.occurrenceAt(occurrence + 3); // the scheduler's timer fired 3 ms late
          expect(named).toBe(new CronSchedule(expression, { timeZone: 'Europe/Paris' }).occurrenceAt(occurrence + 3));
          expect(named).toBe(occurrence);
          expect(schedule.periodMs).toBe(periodMs);
        }
        // The fresh schedules above asked too: count only this schedule's own steps.
        const own = steps.mock.contexts.filter((time) => time === (schedule as unknown as { time: CronTime }).time);
        expect(own).toHaveLength(5);
      } finally {
        steps.mockRestore();
      }
    },
  );

  it('names the next occurrence without a step of the parser once it was prepared between runs', () => {
    const schedule = new CronSchedule('0 0 * * * *', { timeZone: 'Europe/Paris' });
    const nine = at('2026-11-23T08:00:00Z');
    expect(schedule.occurrenceAt(nine + 3)).toBe(nine);
    const steps = jest.spyOn(CronTime.prototype, 'getNextDateFrom');
    try {
      schedule.prepareNext();
      schedule.prepareNext(); // already prepared: nothing more to find
      expect(steps).toHaveBeenCalledTimes(1);
      expect(schedule.occurrenceAt(nine + 3_600_000 + 3)).toBe(nine + 3_600_000);
      expect(schedule.periodMs).toBe(3_600_000);
      expect(steps).toHaveBeenCalledTimes(1);
      // Prepared for an occurrence that was skipped (the process slept): found by a search, as before.
      schedule.prepareNext();
      expect(schedule.occurrenceAt(nine + 5 * 3_600_000 + 3)).toBe(nine + 5 * 3_600_000);
    } finally {
      steps.mockRestore();
    }
  });

  it('names the right occurrence after the clock went back, whatever was prepared before', () => {
    const schedule = new CronSchedule('*/10 * * * * *', { timeZone: 'UTC' });
    const at0 = at('2026-11-23T06:00:00Z');
    expect(schedule.occurrenceAt(at0 + 3)).toBe(at0);
    schedule.prepareNext(); // 06:00:20, the one after 06:00:10
    expect(schedule.occurrenceAt(at0 - 3_600_000 + 3)).toBe(at0 - 3_600_000); // an hour back (a faked clock)
    expect(schedule.occurrenceAt(at0 - 3_600_000 + 10_003)).toBe(at0 - 3_600_000 + 10_000);
    expect(schedule.periodMs).toBe(10_000);
    expect(schedule.occurrenceAt(at0 - 3_600_000 + 20_003)).toBe(at0 - 3_600_000 + 20_000);
  });
});
