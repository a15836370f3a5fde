import { cronTick } from '../../src';

describe('cronTick', () => {
  const second = Date.UTC(2026, 10, 23, 6, 0, 0);

  it.each([
    ['on time', 0],
    ['a few ms late', 7],
    ['499 ms late', 499],
    ['a little early', -30],
    ['499 ms early', -499],
  ])('names the scheduled second when the callback fires %s', (_case, offset) => {
    expect(cronTick(second + offset)).toBe(second);
    expect(cronTick(new Date(second + offset))).toBe(second);
  });

  it('names the next second once a callback is 500 ms or more late', () => {
    expect(cronTick(second + 500)).toBe(second + 1000);
  });
});
