import type { Socket } from 'node:net';
import { monotonicNow, nextTick } from '../../clock';
import { type Deadlined, type DeadlineQueue, processCallsInFlight } from './deadline-queue';

/** A command held back this much longer than its send means the process stalled in between. */
const LATE_FLUSH_MS = 5;
/**
 * The most calls one write holds. Held for a whole tick, a burst's first command would wait for
 * its last: Redis idle while the client builds them, then the client idle while Redis runs them all.
 * In batches, Redis works on one while the client builds the next.
 */
const MAX_BATCH = 16;

/**
 * Holds back a socket's writes until the current tick's work is done, so the commands of many
 * locks taken at once leave in a few writes (the calls of up to MAX_BATCH each) instead of one
 * system call each. A command sent while no other call of the process is in flight leaves at
 * once: the usual sequential call pays no cork, no buffered write and no deferred flush, and a
 * burst costs one write more (its first command). A caller that knows another command follows in
 * the same tick holds the tick's writes first (`holdTick`), so the two leave together.
 */
export class WriteCoalescer {
  private corked: Socket | undefined;
  /** The calls whose commands wait in the corked socket, each with when it was sent. */
  private readonly heldBack: Deadlined[] = [];
  private readonly heldSince: number[] = [];

  constructor(
    /** The socket of the moment (ioredis replaces it on each reconnection). */
    private readonly socketOf: () => Socket | undefined,
    private readonly deadlines: DeadlineQueue,
    private enabled: boolean,
  ) {}

  /** `call`'s command is about to be written: hold the socket's writes until the end of the tick. */
  holdBack(call: Deadlined): void {
    if (!this.enabled) return;
    // A full batch leaves now, before this call's command: it starts the next one.
    if (this.heldBack.length >= MAX_BATCH) this.flush();
    if (!this.corked) {
      // The process's only call: nothing to share its write with. While another connection has a
      // call in flight (a test fleet's replicas, a Redlock quorum's masters), a command alone on
      // its own still waits: their commands leave after the code that built them, not one system
      // call between each.
      if (processCallsInFlight() === 1) return;
      if (!this.cork()) return;
    }
    this.heldBack.push(call);
    this.heldSince.push(monotonicNow());
  }

  /**
   * Holds back the rest of this tick's writes, the next lone command's included: its caller sends
   * another right after it, and both leave in one write.
   */
  holdTick(): void {
    if (this.enabled && !this.corked) this.cork();
  }

  private cork(): boolean {
    const socket = this.socketOf();
    if (!socket || typeof socket.cork !== 'function') return false;
    this.corked = socket;
    socket.cork();
    // The real process.nextTick, captured at load: a test's fake one would hold the writes for the test.
    nextTick(this.flush);
    return true;
  }

  /** Stops holding back writes, at once and for good. */
  stop(): void {
    this.enabled = false;
    this.flush();
  }

  private readonly flush = (): void => {
    const socket = this.corked;
    if (!socket) return; // flushed already
    this.corked = undefined;
    // The process stalled (GC pause, a long synchronous job) between a send and this flush: Redis
    // only now sees that command, so its time to answer starts now. Each command is postponed by
    // its own wait: one sent just before the flush waited for nothing.
    const now = monotonicNow();
    for (let i = 0; i < this.heldBack.length; i++) {
      const lateMs = now - this.heldSince[i];
      if (lateMs >= LATE_FLUSH_MS) this.deadlines.postpone(this.heldBack[i], lateMs);
    }
    this.heldBack.length = 0;
    this.heldSince.length = 0;
    socket.uncork();
  };
}
