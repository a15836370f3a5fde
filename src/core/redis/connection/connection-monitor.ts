import type { Cluster, Redis } from 'ioredis';
import type { Socket } from 'node:net';
import { clearTimeout, monotonicNow, nextTickIsFaked, setTimeout } from '../../clock';
import type { LockEvents } from '../../events/lock-events';
import type { LockLogger } from '../../logger';
import { raceDeadline } from '../../waits';
import { isCluster } from '../is-cluster';
import { classifyReplyError } from '../reply-errors';
import { type Deadlined, DeadlineQueue } from './deadline-queue';
import { OutageLog } from './outage-log';
import { type CallObserver, NO_REPLY, PendingCall, REFUSED, type SendCommand, type SettleReply } from './pending-call';
import { WriteCoalescer } from './write-coalescer';

export { NO_REPLY, REFUSED, type SendCommand, type SettleReply } from './pending-call';

/** How often a wait for the connection also reads the client's status (see waitForReady). */
const STATUS_POLL_MS = 10;
/** Why a connection never comes under a test's fake timers, and what to change. */
const FAKED_NEXT_TICK =
  ": process.nextTick is faked (jest.useFakeTimers() fakes it by default) and ioredis connects on it; keep it real with jest.useFakeTimers({ doNotFake: ['nextTick'] })";

/**
 * One ioredis connection as the library uses it: each call under a deadline, decided at once
 * during a known outage, held back until a connection Redis accepts when it refused the
 * settings; and what it knows of the connection's state (ready, in an outage, misconfigured).
 */
export class ConnectionMonitor implements CallObserver {
  /** Deadlines of the calls in flight. */
  readonly deadlines = new DeadlineQueue();
  private readonly writes: WriteCoalescer;
  private readonly outages: OutageLog;
  /** A configuration Redis refused (a password, a database): nothing is sent until a clean connection. */
  private misconfigured: Error | undefined;
  /** The configuration error seen since the socket last connected. */
  private refusedThisConnection: Error | undefined;
  private detached = false;
  /** Set at the first 'ready': until then, an outage is a connection never made (a wrong address?). */
  private everReady = false;
  /** The client's last connection error since it was last ready, for the reason an outage gives. */
  private lastError: string | undefined;
  /** One promise for every wait on the connection: true when it is ready, false when the store closes. */
  private readyWaiter: { promise: Promise<boolean>; resolve: (ready: boolean) => void } | undefined;

  constructor(
    private readonly client: Redis | Cluster,
    logger: LockLogger,
    redisLabel: string,
    whileDown: string,
    /** Only for a client the library owns: a shared client's errors are its owner's to handle. */
    private readonly handleClientErrors: boolean,
    /** How long one call may take, connection wait included. */
    private readonly timeoutMs: number,
    /** Where outages are reported (`outage-started`, `outage-ended`). */
    events?: LockEvents,
  ) {
    this.outages = new OutageLog(logger, redisLabel, whileDown, events);
    // Only on a connection the library owns (its socket is ours to hold back), and not for a
    // Cluster, whose commands go out on one socket per node.
    const coalesce = handleClientErrors && !isCluster(client);
    this.writes = new WriteCoalescer(() => (client as Redis).stream as Socket | undefined, this.deadlines, coalesce);
    client.on('ready', this.onReady);
    client.on('connect', this.onConnect);
    this.everReady = client.status === 'ready';
    if (handleClientErrors) client.on('error', this.onClientError);
  }

  /** The configuration error Redis replied with on this connection, if any (see `reply-errors`). */
  get configurationProblem(): Error | undefined {
    return this.misconfigured;
  }

  get isReady(): boolean {
    return this.client.status === 'ready';
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
    if (this.outages.inOutage || this.detached || this.client.status === 'end') {
      if (!this.everReady) this.outages.stillUnreachable(this.unreachableReason());
      return settle(NO_REPLY);
    }
    const started = monotonicNow();
    if (!(await this.waitForReady(this.timeoutMs))) {
      if (this.misconfigured) return settle(REFUSED);
      this.outages.started(this.unreachableReason(), !this.everReady);
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

  beforeSend(call: Deadlined): void {
    this.writes.holdBack(call);
  }

  /** The rest of this tick's commands leave together, in one write at its end (a lone one's included). */
  holdWritesThisTick(): void {
    this.writes.holdTick();
  }

  /**
   * Stops holding back writes, at once and for good: the connection is handed to the user, whose
   * commands must never wait for the library's coalescing.
   */
  stopCoalescing(): void {
    this.writes.stop();
  }

  replied(): void {
    if (!this.outages.inOutage) return;
    this.outages.ended();
    // Redis answers again without a new connection (it was frozen, or slow): writes that got no
    // reply in time may never have run, so they are sent again; not once the store is closed,
    // when a late reply must not start new calls (and their deadline timers).
    if (!this.detached) this.onRecovered?.();
  }

  /** Called when Redis answers again after an outage on the same connection. */
  onRecovered: (() => void) | undefined;

  failed(reason: string): void {
    this.outages.started(reason, !this.everReady);
  }

  /** Whether the connection has been ready once since the client was created. */
  get hasConnected(): boolean {
    return this.everReady;
  }

  /** Why there is no connection: the client's last error, when it said one. */
  unreachableReason(): string {
    const waited = `not connected after ${this.timeoutMs} ms${nextTickIsFaked() ? FAKED_NEXT_TICK : ''}`;
    return this.lastError === undefined ? waited : `${waited}; last error: ${this.lastError}`;
  }

  /**
   * Redis refused a command for a reason that is not an outage: logs it as an error. A
   * configuration error on a connection-wide command (AUTH, SELECT, loading the scripts) also
   * stops every call until a clean connection.
   */
  refused(error: Error, kind: 'configuration' | 'data', key: string | undefined, connectionWide = false): void {
    if (kind === 'configuration' && connectionWide) {
      this.misconfigured = error;
      this.refusedThisConnection = error;
      this.readyWaiter?.resolve(false);
      this.readyWaiter = undefined;
    }
    this.outages.refused(error, kind, key);
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
    this.everReady = true;
    this.lastError = undefined;
    // A SELECT refused on this connection leaves it "ready" on the wrong database: still refused.
    this.misconfigured = this.refusedThisConnection;
    if (this.misconfigured) return;
    this.readyWaiter?.resolve(true);
    this.readyWaiter = undefined;
    this.outages.ended();
  };

  private readonly onClientError = (error: Error): void => {
    const kind = classifyReplyError(error);
    if (kind === 'configuration') return this.refused(error, kind, undefined, true);
    this.lastError = error.message;
    this.outages.started(error.message, !this.everReady);
  };
}
