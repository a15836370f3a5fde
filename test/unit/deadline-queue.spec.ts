import { Deadlined, DeadlineQueue } from '../../src/core/redis/deadline-queue';

class Call extends Deadlined {
  constructor(
    readonly name: string,
    deadline: number,
    private readonly expired: string[],
  ) {
    super(deadline);
  }
  expire(): void {
    this.expired.push(this.name);
  }
}

describe('DeadlineQueue', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('expires each call once, in deadline order, only after its deadline, skipping removed ones', () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue();
    const at = (name: string, offset: number) => new Call(name, Date.now() + offset, expired);
    const [a, b, c, d] = [at('a', 100), at('b', 300), at('c', 200), at('d', 150)];
    for (const call of [a, b, c, d]) queue.add(call); // c and d arrive with earlier deadlines than b
    queue.remove(d); // its reply came

    jest.advanceTimersByTime(99);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(2); // the timer fires at 100, and expires after one setImmediate
    expect(expired).toEqual(['a']);
    jest.advanceTimersByTime(200);
    expect(expired).toEqual(['a', 'c', 'b']);
    jest.advanceTimersByTime(1_000);
    expect(expired).toEqual(['a', 'c', 'b']);
    expect([a, b, c, d].some((call) => call.queued)).toBe(false);
  });

  it('postpones calls whose commands left late, and keeps the others on time', () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue();
    const [early, late] = [new Call('early', Date.now() + 100, expired), new Call('late', Date.now() + 100, expired)];
    queue.add(early);
    queue.add(late);
    queue.postpone([late], 500); // its command left 500 ms after it was sent: the process had stalled

    jest.advanceTimersByTime(101);
    expect(expired).toEqual(['early']);
    jest.advanceTimersByTime(400);
    expect(expired).toEqual(['early']);
    jest.advanceTimersByTime(101);
    expect(expired).toEqual(['early', 'late']);
  });

  it('keeps one timer for all calls in flight', () => {
    const queue = new DeadlineQueue();
    for (let i = 0; i < 1_000; i++) queue.add(new Call(`call-${i}`, Date.now() + 1_000, []));
    expect(jest.getTimerCount()).toBe(1);
  });
});
