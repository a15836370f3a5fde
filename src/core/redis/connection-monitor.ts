import type { Cluster, Redis } from 'ioredis';
import type { Socket } from 'node:net';
import { clearTimeout, monotonicNow, setImmediate, setTimeout } from '../clock';
import { type LockLogger, logInfo } from '../lock-options';
import { isCluster } from './redis-target';
import { Deadlined, DeadlineQueue } from './deadline-queue';

/** What `call` hands its `settle` callback when no reply came in time. */
export const NO_REPLY: unique symbol = Symbol('no reply from Redis in time');

/** Sends one command. `afterNoScript`: Redis lost the script, so send its source with EVAL. */
export type SendCommand<T> = (afterNoScript: boolean) => Promise<T>;

/** Turns a reply, or NO_REPLY (then `late` settles if the reply still comes), into the caller's answer. */
export type SettleReply<T, R> = (reply: T | typeof NO_REPLY, late?: Promise<T>) => R;

/** A flush this much later than its sends means the process stalled in between. */
const LATE_FLUSH_MS = 5;

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const isNoScriptError = (error: unknown): boolean => error instanceof Error && error.message.startsWith('NOSCRIPT');

/**
 * Runs each Redis call under a deadline and tracks outages, so an outage is logged once
 * when it starts and once when it ends, however many ticks fall inside it.
 */
export class ConnectionMonitor {
  /** @internal Deadlines of the calls in flight. */
  readonly deadlines = new DeadlineQueue();
  private readonly coalesceWrites: boolean;
  private corked: Socket | undefined;
  private corkedAt = 0;
  /** The calls whose commands wait in the corked socket. */
  private readonly heldBack: Deadlined[] = [];
  private outageReason: string | undefined;
  private detached = false;
  /** One promise for every wait on the connection: true when it is ready, false when the store closes. */
  private readyWaiter: { promise: Promise<boolean>; resolve: (ready: boolean) => void } | undefined;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly logger: LockLogger,
    private readonly redisLabel: string,
    private readonly whileDown: string,
    /** Only for a client the library owns: a shared client's errors are its owner's to handle. */
    private readonly handleClientErrors: boolean,
    /** How long one call may take, connection wait included. */
    private readonly timeoutMs: number,
  ) {
    // Only on a connection the library owns (its socket is ours to hold back), and not for a
    // Cluster, whose commands go out on one socket per node.
    this.coalesceWrites = handleClientErrors && !isCluster(client);
    client.on('ready', this.onReady);
    if (handleClientErrors) client.on('error', this.onClientError);
  }

  get isReady(): boolean {
    return this.client.status === 'ready';
  }

  get inOutage(): boolean {
    return this.outageReason !== undefined;
  }

  /**
   * Sends one command and settles with what `settle` makes of its reply, or of NO_REPLY when none
   * came within the deadline. Never rejects (unless `settle` throws).
   */
  call<T, R>(send: SendCommand<T>, settle: SettleReply<T, R>): Promise<R> {
    if (this.isReady) return this.callWithDeadline(send, settle, this.timeoutMs);
    return this.callWhenReady(send, settle);
  }

  private async callWhenReady<T, R>(send: SendCommand<T>, settle: SettleReply<T, R>): Promise<R> {
    // During a known outage, decide at once instead of making every tick wait.
    if (this.inOutage || this.detached || this.client.status === 'end') return settle(NO_REPLY);
    const started = monotonicNow();
    if (!(await this.waitForReady(this.timeoutMs))) {
      this.startOutage(`not connected after ${this.timeoutMs} ms`);
      return settle(NO_REPLY);
    }
    return this.callWithDeadline(send, settle, Math.max(1, this.timeoutMs - (monotonicNow() - started)));
  }

  /** The hot path: one promise of our own, settled by the reply or by the deadline, whichever comes first. */
  private callWithDeadline<T, R>(send: SendCommand<T>, settle: SettleReply<T, R>, timeoutMs: number): Promise<R> {
    return new Promise((resolve) => new PendingCall(this, send, settle, resolve, timeoutMs).send(false));
  }

  /**
   * @internal Holds back the socket's writes until the current tick's work is done, so the
   * commands of many locks taken at once leave in one write instead of one system call each.
   * A lone command leaves at the end of the tick, before any I/O: no added round trip.
   */
  beforeSend(call: Deadlined): void {
    if (!this.coalesceWrites) return;
    if (this.corked) {
      this.heldBack.push(call);
      return;
    }
    const socket = (this.client as Redis).stream as Socket | undefined;
    if (!socket || typeof socket.cork !== 'function') return;
    this.corked = socket;
    this.corkedAt = monotonicNow();
    this.heldBack.push(call);
    socket.cork();
    process.nextTick(this.flushWrites);
  }

  private readonly flushWrites = (): void => {
    const socket = this.corked!;
    this.corked = undefined;
    // The process stalled (GC pause, a long synchronous job) between the sends and this flush:
    // Redis only now sees the commands, so their time to answer starts now.
    const lateMs = monotonicNow() - this.corkedAt;
    if (lateMs >= LATE_FLUSH_MS) this.deadlines.postpone(this.heldBack, lateMs);
    this.heldBack.length = 0;
    socket.uncork();
  };

  /** @internal A reply came: Redis works. */
  replied(): void {
    this.endOutage();
  }

  /** @internal A call failed, or got no reply in time. */
  failed(reason: string): void {
    this.startOutage(reason);
  }

  /** Resolves true once the client is ready, false when `timeoutMs` passes first. */
  async waitForReady(timeoutMs: number): Promise<boolean> {
    if (this.detached) return false;
    if (this.isReady) return true;
    if (this.client.status === 'end') return false;
    this.readyWaiter ??= (() => {
      let resolve!: (ready: boolean) => void;
      const promise = new Promise<boolean>((done) => (resolve = done));
      return { promise, resolve };
    })();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => setImmediate(resolve, false), timeoutMs); // as in DeadlineQueue: a stall must not hide a 'ready'
    });
    try {
      return await Promise.race([this.readyWaiter.promise, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  detach(): void {
    this.client.off('ready', this.onReady);
    if (this.handleClientErrors) this.client.off('error', this.onClientError);
    // A wait in progress ends "not connected": nothing may be decided on a closing connection.
    this.readyWaiter?.resolve(false);
    this.readyWaiter = undefined;
    this.detached = true;
  }

  private readonly onReady = (): void => {
    this.readyWaiter?.resolve(true);
    this.readyWaiter = undefined;
    this.endOutage();
  };

  private readonly onClientError = (error: Error): void => {
    this.startOutage(error.message);
  };

  private startOutage(reason: string): void {
    if (this.outageReason !== undefined) return;
    this.outageReason = reason;
    this.logger.warn(`Redis at ${this.redisLabel} is unavailable (${reason}); ${this.whileDown} until it is back.`);
  }

  private endOutage(): void {
    if (this.outageReason === undefined) return;
    this.outageReason = undefined;
    logInfo(this.logger, `Redis at ${this.redisLabel} is reachable again; locks are taken in Redis again.`);
  }
}

/** One command in flight, settled once: by its reply, by an error, or by its deadline. */
class PendingCall<T, R> extends Deadlined {
  private pending: Promise<T> | undefined;
  private retriedScript = false;

  constructor(
    private readonly monitor: ConnectionMonitor,
    private readonly sendCommand: SendCommand<T>,
    private readonly settle: SettleReply<T, R>,
    private readonly resolve: (answer: R) => void,
    private readonly timeoutMs: number,
  ) {
    super(monotonicNow() + timeoutMs);
    monitor.deadlines.add(this);
  }

  send(afterNoScript: boolean): void {
    try {
      this.monitor.beforeSend(this);
      this.pending = this.sendCommand(afterNoScript);
    } catch (error) {
      this.pending = Promise.reject(error);
    }
    this.pending.then(this.onReply, this.onError);
  }

  expire(): void {
    this.monitor.failed(`no reply within ${this.timeoutMs} ms`);
    this.resolve(this.settle(NO_REPLY, this.pending));
  }

  private readonly onReply = (value: T): void => {
    if (!this.queued) return; // already expired
    this.monitor.deadlines.remove(this);
    this.monitor.replied();
    this.resolve(this.settle(value));
  };

  private readonly onError = (error: unknown): void => {
    // A failure after the deadline is expected and already accounted for.
    if (!this.queued) return;
    if (!this.retriedScript && isNoScriptError(error)) {
      // Redis restarted or flushed its scripts: EVAL runs the source and caches it again.
      this.retriedScript = true;
      return this.send(true);
    }
    this.monitor.deadlines.remove(this);
    this.monitor.failed(describeError(error));
    this.resolve(this.settle(NO_REPLY));
  };
}
