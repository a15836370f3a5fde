import type { Cluster, Redis } from 'ioredis';
import type { Socket } from 'node:net';
import { clearTimeout, monotonicNow, nextTick, nextTickIsFaked, setTimeout } from '../clock';
import { raceDeadline } from '../waits';
import { describeError } from '../errors';
import type { LockEvents } from '../lock-events';
import { type LockLogger, logInfo } from '../lock-options';
import { isCluster } from './redis-target';
import { ACL_COMMANDS, classifyReplyError, isAclRefusal } from './reply-errors';
import { Deadlined, DeadlineQueue } from './deadline-queue';

/** What `call` hands its `settle` callback when no reply came in time. */
export const NO_REPLY: unique symbol = Symbol('no reply from Redis in time');

/** What `call` hands its `settle` callback when Redis is up but refused the command (see reply-errors). */
export const REFUSED: unique symbol = Symbol('refused by Redis');

/** Sends one command. `afterNoScript`: Redis lost the script, so send its source with EVAL. */
export type SendCommand<T> = (afterNoScript: boolean) => Promise<T>;

/** Turns a reply, or NO_REPLY (then `late` settles if the reply still comes), into the caller's answer. */
export type SettleReply<T, R> = (reply: T | typeof NO_REPLY | typeof REFUSED, late?: Promise<T>) => R;

/** A command held back this much longer than its send means the process stalled in between. */
const LATE_FLUSH_MS = 5;
/** How often a wait for the connection also reads the client's status (see waitForReady). */
const STATUS_POLL_MS = 10;
/** The same refusal is logged at most this often. */
const REFUSAL_LOG_EVERY_MS = 60_000;
/** Why a connection never comes under a test's fake timers, and what to change. */
const FAKED_NEXT_TICK =
  ": process.nextTick is faked (jest.useFakeTimers() fakes it by default) and ioredis connects on it; keep it real with jest.useFakeTimers({ doNotFake: ['nextTick'] })";

const isNoScriptError = (error: unknown): boolean => error instanceof Error && error.message.startsWith('NOSCRIPT');

/**
 * Runs each Redis call under a deadline and tracks outages, so an outage is logged once
 * when it starts and once when it ends, however many ticks fall inside it.
 */
export class ConnectionMonitor {
  /** @internal Deadlines of the calls in flight. */
  readonly deadlines = new DeadlineQueue();
  private coalesceWrites: boolean;
  private corked: Socket | undefined;
  /** The calls whose commands wait in the corked socket, each with when it was sent. */
  private readonly heldBack: Deadlined[] = [];
  private readonly heldSince: number[] = [];
  private outageReason: string | undefined;
  private outageStartedAt = 0;
  /** A configuration Redis refused (a password, a database): nothing is sent until a clean connection. */
  private misconfigured: Error | undefined;
  /** The configuration error seen since the socket last connected. */
  private refusedThisConnection: Error | undefined;
  private lastRefusal = { message: '', at: -Infinity };
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
    /** Where outages are reported (`outage-started`, `outage-ended`). */
    private readonly events?: LockEvents,
  ) {
    // Only on a connection the library owns (its socket is ours to hold back), and not for a
    // Cluster, whose commands go out on one socket per node.
    this.coalesceWrites = handleClientErrors && !isCluster(client);
    client.on('ready', this.onReady);
    client.on('connect', this.onConnect);
    if (handleClientErrors) client.on('error', this.onClientError);
  }

  /** The configuration error Redis replied with on this connection, if any (see `reply-errors`). */
  get configurationProblem(): Error | undefined {
    return this.misconfigured;
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
  call<T, R>(send: SendCommand<T>, settle: SettleReply<T, R>, key?: string): Promise<R> {
    if (this.isReady && !this.misconfigured) return this.callWithDeadline(send, settle, this.timeoutMs, key);
    return this.callWhenReady(send, settle, key);
  }

  private async callWhenReady<T, R>(send: SendCommand<T>, settle: SettleReply<T, R>, key?: string): Promise<R> {
    // Redis is up but refuses these settings: no lock may be taken with them, nor run without one.
    if (this.misconfigured) return settle(REFUSED);
    // During a known outage, decide at once instead of making every tick wait.
    if (this.inOutage || this.detached || this.client.status === 'end') return settle(NO_REPLY);
    const started = monotonicNow();
    if (!(await this.waitForReady(this.timeoutMs))) {
      if (this.misconfigured) return settle(REFUSED);
      this.startOutage(`not connected after ${this.timeoutMs} ms${nextTickIsFaked() ? FAKED_NEXT_TICK : ''}`);
      return settle(NO_REPLY);
    }
    if (this.misconfigured) return settle(REFUSED);
    return this.callWithDeadline(send, settle, Math.max(1, this.timeoutMs - (monotonicNow() - started)), key);
  }

  /** The hot path: one promise of our own, settled by the reply or by the deadline, whichever comes first. */
  private callWithDeadline<T, R>(
    send: SendCommand<T>,
    settle: SettleReply<T, R>,
    timeoutMs: number,
    key: string | undefined,
  ): Promise<R> {
    return new Promise((resolve) => new PendingCall(this, send, settle, resolve, timeoutMs, key).send(false));
  }

  /**
   * @internal Holds back the socket's writes until the current tick's work is done, so the
   * commands of many locks taken at once leave in one write instead of one system call each.
   * A lone command leaves at the end of the tick, before any I/O: no added round trip.
   */
  beforeSend(call: Deadlined): void {
    if (!this.coalesceWrites) return;
    if (!this.corked) {
      const socket = (this.client as Redis).stream as Socket | undefined;
      if (!socket || typeof socket.cork !== 'function') return;
      this.corked = socket;
      socket.cork();
      nextTick(this.flushWrites);
    }
    this.heldBack.push(call);
    this.heldSince.push(monotonicNow());
  }

  /**
   * Stops holding back writes, at once and for good: the connection is handed to the user, whose
   * commands must never wait for the library's coalescing.
   */
  stopCoalescing(): void {
    this.coalesceWrites = false;
    this.flushWrites();
  }

  private readonly flushWrites = (): void => {
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

  /** @internal A reply came: Redis works. */
  replied(): void {
    this.endOutage();
  }

  /** @internal A call failed, or got no reply in time. */
  failed(reason: string): void {
    this.startOutage(reason);
  }

  /**
   * @internal Redis refused a command for a reason that is not an outage: logs it as an error (the
   * same one at most once a minute). A configuration error on a connection-wide command (AUTH,
   * SELECT, loading the scripts) also stops every call until a clean connection.
   */
  refused(error: Error, kind: 'configuration' | 'data', key: string | undefined, connectionWide = false): void {
    if (kind === 'configuration' && connectionWide) {
      this.misconfigured = error;
      this.refusedThisConnection = error;
      this.readyWaiter?.resolve(false);
      this.readyWaiter = undefined;
    }
    const now = monotonicNow();
    const message =
      kind === 'data'
        ? `Redis at ${this.redisLabel} refused a lock command on ${key ?? 'a lock key'}: ${error.message}. That lock is not taken, and its job does not run, until the key holds what the library wrote there (delete it).`
        : `Redis at ${this.redisLabel} refused the lock settings: ${error.message.replace(/\.$/, '')}. No lock is taken, and no guarded job runs, until ${
            isAclRefusal(error)
              ? `the ACL user (username, REDIS_USERNAME) is allowed ${ACL_COMMANDS}`
              : 'the settings are fixed (password, username, db)'
          }.`;
    if (message === this.lastRefusal.message && now - this.lastRefusal.at < REFUSAL_LOG_EVERY_MS) return;
    this.lastRefusal = { message, at: now };
    this.logger.error(message);
  }

  /** Resolves true once the client is ready, false when `timeoutMs` passes first. */
  async waitForReady(timeoutMs: number): Promise<boolean> {
    if (this.detached || this.misconfigured) return false;
    if (this.isReady) return true;
    if (this.client.status === 'end') return false;
    this.readyWaiter ??= (() => {
      let resolve!: (ready: boolean) => void;
      const promise = new Promise<boolean>((done) => (resolve = done));
      return { promise, resolve };
    })();
    let poll: NodeJS.Timeout | undefined;
    // ioredis emits 'ready' on process.nextTick, which a test's fake timers may hold back: the
    // status it sets at once says whether the connection came all the same. (With a real
    // nextTick, its events are delivered before any timer runs: the status never gets ahead.)
    const readyByStatus = new Promise<true>((resolve) => {
      const check = (): void => {
        if (this.isReady && !this.refusedThisConnection && !this.detached) resolve(true);
        else poll = setTimeout(check, STATUS_POLL_MS);
      };
      poll = setTimeout(check, STATUS_POLL_MS);
    });
    try {
      // As in DeadlineQueue: a stall must not hide a 'ready' that already came.
      const ready = Promise.race([this.readyWaiter.promise, readyByStatus]);
      if (await raceDeadline(ready, timeoutMs, () => false, { afterPendingIo: true })) return !this.detached;
      return this.isReady && !this.misconfigured && !this.detached;
    } finally {
      clearTimeout(poll);
    }
  }

  detach(): void {
    this.client.off('ready', this.onReady);
    this.client.off('connect', this.onConnect);
    if (this.handleClientErrors) this.client.off('error', this.onClientError);
    // A wait in progress ends "not connected": nothing may be decided on a closing connection.
    this.readyWaiter?.resolve(false);
    this.readyWaiter = undefined;
    this.detached = true;
  }

  private readonly onConnect = (): void => {
    this.refusedThisConnection = undefined;
  };

  private readonly onReady = (): void => {
    // A SELECT refused on this connection leaves it "ready" on the wrong database: still refused.
    this.misconfigured = this.refusedThisConnection;
    if (this.misconfigured) return;
    this.readyWaiter?.resolve(true);
    this.readyWaiter = undefined;
    this.endOutage();
  };

  private readonly onClientError = (error: Error): void => {
    const kind = classifyReplyError(error);
    if (kind === 'configuration') this.refused(error, kind, undefined, true);
    else this.startOutage(error.message);
  };

  private startOutage(reason: string): void {
    if (this.outageReason !== undefined) return;
    this.outageReason = reason;
    this.outageStartedAt = monotonicNow();
    this.logger.warn(`Redis at ${this.redisLabel} is unavailable (${reason}); ${this.whileDown} until it is back.`);
    if (this.events?.active) {
      this.events.emit({ type: 'outage-started', store: this.redisLabel, reason, durationMs: undefined });
    }
  }

  private endOutage(): void {
    if (this.outageReason === undefined) return;
    const reason = this.outageReason;
    this.outageReason = undefined;
    logInfo(this.logger, `Redis at ${this.redisLabel} is reachable again; locks are taken in Redis again.`);
    if (this.events?.active) {
      const durationMs = monotonicNow() - this.outageStartedAt;
      this.events.emit({ type: 'outage-ended', store: this.redisLabel, reason, durationMs });
    }
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
    private readonly key: string | undefined,
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
    const kind = classifyReplyError(error);
    if (kind === 'outage') {
      this.monitor.failed(describeError(error));
      return this.resolve(this.settle(NO_REPLY));
    }
    this.monitor.refused(error as Error, kind, this.key);
    this.resolve(this.settle(REFUSED));
  };
}
