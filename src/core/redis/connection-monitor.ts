import type { Cluster, Redis } from 'ioredis';
import type { LockLogger } from '../lock-options';

/** A reply from Redis, or the news that none came in time (`late` settles if it still comes). */
export type RedisOutcome<T> = { ok: true; value: T } | { ok: false; late?: Promise<T> };

const TIMED_OUT = Symbol('timed out');

/**
 * Runs each Redis call under a deadline and tracks outages, so an outage is logged once
 * when it starts and once when it ends, however many ticks fall inside it.
 */
export class ConnectionMonitor {
  private outageReason: string | undefined;
  private readyWaiter: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly logger: LockLogger,
    private readonly redisLabel: string,
    private readonly whileDown: string,
    /** Only for a client the library owns: a shared client's errors are its owner's to handle. */
    private readonly handleClientErrors: boolean,
  ) {
    client.on('ready', this.onReady);
    if (handleClientErrors) client.on('error', this.onClientError);
  }

  get isReady(): boolean {
    return this.client.status === 'ready';
  }

  get inOutage(): boolean {
    return this.outageReason !== undefined;
  }

  /** Sends one command and waits at most `timeoutMs` for it, connection wait included. */
  async call<T>(send: () => Promise<T>, timeoutMs: number): Promise<RedisOutcome<T>> {
    const started = Date.now();
    if (!this.isReady) {
      // During a known outage, decide at once instead of making every tick wait.
      if (this.inOutage || this.client.status === 'end') return { ok: false };
      if (!(await this.waitForReady(timeoutMs))) {
        this.startOutage(`not connected after ${timeoutMs} ms`);
        return { ok: false };
      }
    }
    const remainingMs = Math.max(1, timeoutMs - (Date.now() - started));
    let timer: NodeJS.Timeout | undefined;
    try {
      const pending = send();
      const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
        // Node runs due timers before it reads sockets: after a stall (GC pause, SIGSTOP) the
        // deadline fires first even when the reply is already there. One setImmediate lets the
        // poll phase read it, so only a reply that truly has not come counts as a timeout.
        timer = setTimeout(() => setImmediate(resolve, TIMED_OUT), remainingMs);
      });
      const reply = await Promise.race([pending, timeout]);
      if (reply === TIMED_OUT) {
        this.startOutage(`no reply within ${timeoutMs} ms`);
        pending.catch(() => undefined); // a late failure is expected and already accounted for
        return { ok: false, late: pending };
      }
      this.endOutage();
      return { ok: true, value: reply };
    } catch (error) {
      this.startOutage(error instanceof Error ? error.message : String(error));
      return { ok: false };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves true once the client is ready, false when `timeoutMs` passes first. */
  async waitForReady(timeoutMs: number): Promise<boolean> {
    if (this.isReady) return true;
    if (this.client.status === 'end') return false;
    this.readyWaiter ??= (() => {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => (resolve = done));
      return { promise, resolve };
    })();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => setImmediate(resolve, false), timeoutMs); // see call(): a stall must not hide a 'ready'
    });
    try {
      return await Promise.race([this.readyWaiter.promise.then(() => true), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  detach(): void {
    this.client.off('ready', this.onReady);
    if (this.handleClientErrors) this.client.off('error', this.onClientError);
    this.readyWaiter?.resolve();
    this.readyWaiter = undefined;
  }

  private readonly onReady = (): void => {
    this.readyWaiter?.resolve();
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
    const log = this.logger.log ?? this.logger.warn;
    log.call(this.logger, `Redis at ${this.redisLabel} is reachable again; locks are taken in Redis again.`);
  }
}
