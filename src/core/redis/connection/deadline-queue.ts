import { clearTimeout, monotonicNow, setImmediate, setTimeout } from '../../clock';

/** Something waiting on Redis that must give up at `deadline` (on the monotonic clock). */
export abstract class Deadlined {
  /** @internal */ previous: Deadlined | undefined;
  /** @internal */ next: Deadlined | undefined;
  /** @internal */ queued = false;

  constructor(public deadline: number) {}

  /** Called once when the deadline has passed and the entry is still queued. */
  abstract expire(): void;
}

/**
 * Entries of every queue of calls awaiting replies (`afterPendingIo`), on all the library's
 * connections in this process: its calls in flight, counted by the queues themselves, so a call
 * counts exactly while it is queued (until its reply, its error or its deadline).
 */
let callsInFlight = 0;

/** Calls in flight on all the library's connections in this process. */
export function processCallsInFlight(): number {
  return callsInFlight;
}

/**
 * Deadlines of calls in flight (or of lock renewals), in deadline order, served by one timer for
 * all of them: an entry costs a link and an unlink instead of a timer of its own.
 */
export class DeadlineQueue {
  private head: Deadlined | undefined;
  private tail: Deadlined | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDueAt = Infinity;

  /**
   * @param afterPendingIo Expire only once the socket reads pending after a stall are done (for
   * calls awaiting replies, which then count in `processCallsInFlight`); without it, entries
   * expire in the timers phase, in due order with the process's other timers (a lock's renewal
   * before the next step of the run holding it).
   */
  constructor(private readonly afterPendingIo = true) {}

  add(entry: Deadlined): void {
    // Calls mostly share one timeout, so the new one belongs at the end; walk back only if not.
    let after = this.tail;
    while (after && after.deadline > entry.deadline) after = after.previous;
    entry.previous = after;
    entry.next = after ? after.next : this.head;
    if (entry.next) entry.next.previous = entry;
    else this.tail = entry;
    if (after) after.next = entry;
    else this.head = entry;
    entry.queued = true;
    if (this.afterPendingIo) callsInFlight++;
    if (entry.deadline < this.timerDueAt) this.arm(entry.deadline);
  }

  remove(entry: Deadlined): void {
    if (!entry.queued) return;
    entry.queued = false;
    if (this.afterPendingIo) callsInFlight--;
    if (entry.previous) entry.previous.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.previous = entry.previous;
    else this.tail = entry.previous;
    entry.previous = entry.next = undefined;
  }

  /** Moves the deadline of `entry` (if still queued) `ms` later, keeping the queue in order. */
  postpone(entry: Deadlined, ms: number): void {
    if (!entry.queued) return;
    this.remove(entry);
    entry.deadline += ms;
    this.add(entry);
  }

  /** Disarms the timer once nothing is queued (the owner is closing); the next `add` arms it again. */
  disarmIfEmpty(): void {
    if (!this.head) this.disarm();
  }

  /** Expires every entry now and disarms the timer: the queue's owner is closing. */
  expireAll(): void {
    this.disarm();
    while (this.head) {
      const entry = this.head;
      this.remove(entry);
      entry.expire();
    }
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDueAt = Infinity;
  }

  private arm(dueAt: number): void {
    clearTimeout(this.timer);
    this.timerDueAt = dueAt;
    // Node runs due timers before it reads sockets: after a stall (GC pause, SIGSTOP) the timer
    // fires first even when replies are already there. With `afterPendingIo`, one setImmediate lets
    // the poll phase read them, so only a reply that truly has not come counts as late.
    const expire = this.afterPendingIo ? this.expireAfterPendingIo : this.expireDue;
    this.timer = setTimeout(expire, Math.max(1, dueAt - monotonicNow()));
    // Whatever an entry waits on (a socket, a reconnection timer, a run) keeps the process alive; this need not.
    this.timer.unref();
  }

  private readonly expireAfterPendingIo = (): void => {
    setImmediate(this.expireDue);
  };

  private readonly expireDue = (): void => {
    // The timer that fired, or one armed since (before this setImmediate ran): the head re-arms it below.
    this.disarm();
    const now = monotonicNow();
    while (this.head && this.head.deadline <= now) {
      const entry = this.head;
      this.remove(entry);
      entry.expire();
    }
    if (this.head) this.arm(this.head.deadline);
  };
}
