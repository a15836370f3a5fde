import { monotonicNow } from '../../src/core/clock';
import { Deadlined, DeadlineQueue } from '../../src/core/redis/connection/deadline-queue';
import { TimerWatch } from '../support/timer-watch';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A call that records when it expired, on the monotonic clock the queue uses. */
class Call extends Deadlined {
  expiredAt: number | undefined;
  constructor(
    readonly name: string,
    inMs: number,
    private readonly expired: string[],
  ) {
    super(monotonicNow() + inMs);
  }
  expire(): void {
    this.expiredAt = monotonicNow();
    this.expired.push(this.name);
  }
}

describe('DeadlineQueue (real time on the monotonic clock)', () => {
  it('expires each call once, in deadline order, never before its deadline, skipping removed ones', async () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue();
    const [a, b, c, d] = [
      new Call('a', 50, expired),
      new Call('b', 250, expired),
      new Call('c', 150, expired),
      new Call('d', 100, expired),
    ];
    for (const call of [a, b, c, d]) queue.add(call); // c and d arrive with earlier deadlines than b
    queue.remove(d); // its reply came

    await sleep(600);
    expect(expired).toEqual(['a', 'c', 'b']);
    for (const call of [a, b, c]) expect(call.expiredAt!).toBeGreaterThanOrEqual(call.deadline);
    expect([a, b, c, d].some((call) => call.queued)).toBe(false);
  });

  it('postpones calls whose commands left late, and keeps the others on time', async () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue();
    const [early, late] = [new Call('early', 50, expired), new Call('late', 50, expired)];
    queue.add(early);
    queue.add(late);
    queue.postpone(late, 400); // its command left 400 ms after it was sent: the process had stalled

    await sleep(250);
    expect(expired).toEqual(['early']);
    await sleep(500);
    expect(expired).toEqual(['early', 'late']);
    expect(late.expiredAt! - early.expiredAt!).toBeGreaterThanOrEqual(350);
  });

  it('keeps one timer for all calls in flight, and none once expireAll() settles them', async () => {
    const watch = new TimerWatch().start();
    try {
      const expired: string[] = [];
      const queue = new DeadlineQueue();
      for (let i = 0; i < 1_000; i++) queue.add(new Call(`call-${i}`, 60_000, expired));
      expect(watch.createdCount).toBe(1);

      queue.expireAll();

      expect(expired).toHaveLength(1_000);
      expect(await watch.armed()).toEqual([]);
    } finally {
      watch.stop();
    }
  });
});
