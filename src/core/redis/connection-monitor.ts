import type { Cluster, Redis } from 'ioredis';
import type { LockLogger } from '../lock-options';

/** A reply from Redis, or the news that none came in time (`late` settles if it still comes). */
export type RedisOutcome<T> = { ok: true; value: T } | { ok: false; late?: Promise<T> };

const NO_REPLY: RedisOutcome<never> = { ok: false };

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

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
  call<T>(send: () => Promise<T>, timeoutMs: number): Promise<RedisOutcome<T>> {
    if (this.isReady) return this.callWithDeadline(send, timeoutMs);
    return this.callWhenReady(send, timeoutMs);
  }

  private async callWhenReady<T>(send: () => Promise<T>, timeoutMs: number): Promise<RedisOutcome<T>> {
    // During a known outage, decide at once instead of making every tick wait.
    if (this.inOutage || this.client.status === 'end') return NO_REPLY;
    const started = Date.now();
    if (!(await this.waitForReady(timeoutMs))) {
      this.startOutage(`not connected after ${timeoutMs} ms`);
      return NO_REPLY;
    }
    return this.callWithDeadline(send, Math.max(1, timeoutMs - (Date.now() - started)));
  }

  /** The hot path: one promise, settled by the reply or by the deadline, whichever comes first. */
  private callWithDeadline<T>(send: () => Promise<T>, timeoutMs: number): Promise<RedisOutcome<T>> {
    return new Promise((resolve) => {
      let pending: Promise<T>;
      try {
        pending = send();
      } catch (error) {
        this.startOutage(describeError(error));
        return resolve(NO_REPLY);
      }
      let settled = false;
      // Node runs due timers before it reads sockets: after a stall (GC pause, SIGSTOP) the
      // deadline fires first even when the reply is already there. One setImmediate lets the poll
      // phase read it, so only a reply that truly has not come counts as a timeout.
      const timer = setTimeout(() => setImmediate(onDeadline), timeoutMs);
      const onDeadline = (): void => {
        if (settled) return;
        settled = true;
        this.startOutage(`no reply within ${timeoutMs} ms`);
        resolve({ ok: false, late: pending });
      };
      pending.then(
        (value) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.endOutage();
          resolve({ ok: true, value });
        },
        (error: unknown) => {
          // A failure after the deadline is expected and already accounted for.
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.startOutage(describeError(error));
          resolve(NO_REPLY);
        },
      );
    });
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
