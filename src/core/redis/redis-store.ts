import type { Cluster, Redis } from 'ioredis';
import type { Socket } from 'node:net';
import { monotonicNow } from '../clock';
import { raceDeadline } from '../waits';
import type { AcquireReply, LockRequest, LockStore, OwnerReply, RunHistoryWrite, ServerProbe } from '../lock-store';
import type { LockEvents } from '../lock-events';
import type { LockLogger } from '../lock-options';
import { isCluster } from './redis-target';
import { ConnectionMonitor, NO_REPLY, REFUSED } from './connection-monitor';
import { classifyReplyError } from './reply-errors';
import {
  ACQUIRE,
  ACQUIRE_CLOCK_SKEW,
  ACQUIRE_HELD,
  ACQUIRE_JOB,
  ACQUIRE_PAUSED,
  ACQUIRE_TICK_DONE,
  ACQUIRE_UNFENCED,
  CANCEL_ACQUISITION,
  EXTEND_IF_OWNER,
  LOCK_SCRIPTS,
  RELEASE_AND_RECORD,
  RELEASE_IF_OWNER,
} from './lock-scripts';

const ACQUIRED_UNFENCED: AcquireReply = { kind: 'acquired', fencingToken: undefined };
const HELD: AcquireReply = { kind: 'held' };
const TICK_SERVED: AcquireReply = { kind: 'tick-served' };
const PAUSED: AcquireReply = { kind: 'paused' };
const UNAVAILABLE: AcquireReply = { kind: 'unavailable' };
const REFUSED_REPLY: AcquireReply = { kind: 'refused' };
const same = <T>(value: T): T => value;

/** What an EXTEND_IF_OWNER or RELEASE_IF_OWNER reply means. */
const toOwnerReply = (reply: unknown): OwnerReply =>
  reply === NO_REPLY || reply === REFUSED ? 'unknown' : reply === 1 ? 'done' : 'not-owner';

/** Locks on one Redis deployment: a standalone server, a Sentinel-managed master, or a Cluster. */
export class RedisStore implements LockStore {
  private readonly monitor: ConnectionMonitor;
  /** What this replica declared (hash key → fields), sent again on every reconnection. */
  private readonly declarations = new Map<string, Declared>();
  /** The script loads of the latest connection. */
  private scriptsLoaded: Promise<void> = Promise.resolve();

  constructor(
    readonly client: Redis | Cluster,
    private readonly ownsClient: boolean,
    readonly label: string,
    private readonly timeoutMs: number,
    logger: LockLogger,
    whileDown: string,
    /** Replicas that must acknowledge a tick or fencing acquisition (`WAIT`); 0 for none. */
    private readonly waitForReplicas = 0,
    events?: LockEvents,
  ) {
    this.monitor = new ConnectionMonitor(client, logger, label, whileDown, ownsClient, timeoutMs, events);
    client.on('ready', this.onReady);
    if (client.status === 'ready') this.loadScripts();
  }

  isReady(): boolean {
    return this.monitor.isReady;
  }

  /** The client, for its owner's own commands: the library stops coalescing its writes. */
  handOutClient(): Redis | Cluster {
    this.monitor.stopCoalescing();
    return this.client;
  }

  configurationProblem(): Error | undefined {
    return this.monitor.configurationProblem;
  }

  /** Resolves once connected and the scripts are loaded (so a refusal of them is known), or false after `timeoutMs`. */
  async waitForReady(timeoutMs: number): Promise<boolean> {
    const started = monotonicNow();
    if (!(await this.monitor.waitForReady(timeoutMs))) return false;
    await raceDeadline(this.scriptsLoaded, timeoutMs - (monotonicNow() - started), () => undefined);
    return this.monitor.configurationProblem === undefined;
  }

  acquire<R>(request: LockRequest, cancelIfLate: boolean, then: (reply: AcquireReply) => R): Promise<R> {
    // Only what a failover must not lose waits for replicas: a served tick, a fencing token.
    if (this.waitForReplicas > 0 && (request.tick !== undefined || request.fencing)) {
      return this.acquireReplicated(request, cancelIfLate).then(then);
    }
    return this.acquireOnce(request, cancelIfLate, then);
  }

  /**
   * Takes the lock, then waits (`WAIT`, within what is left of the deadline) until
   * `waitForReplicas` replicas have it. Without their acknowledgement a failover could promote a
   * replica that never saw the lock or its tick; the fail mode decides: open keeps the lock,
   * closed gives it back (tick included) and reports Redis unavailable.
   */
  private async acquireReplicated(request: LockRequest, failClosed: boolean): Promise<AcquireReply> {
    const started = monotonicNow();
    const reply = await this.acquireOnce(request, failClosed, same);
    if (reply.kind !== 'acquired') return reply;
    const leftMs = Math.max(1, Math.floor(this.timeoutMs - (monotonicNow() - started)));
    const acknowledged = await this.monitor.call(
      () => this.client.call('WAIT', this.waitForReplicas, leftMs),
      (count) => (count === NO_REPLY || count === REFUSED ? 0 : Number(count)),
      request.lockKey,
    );
    if (acknowledged >= this.waitForReplicas || !failClosed) return reply;
    void this.cancel(request);
    return UNAVAILABLE;
  }

  private acquireOnce<R>(request: LockRequest, cancelIfLate: boolean, then: (reply: AcquireReply) => R): Promise<R> {
    const { lockKey, token, ttlMs, tick, fencing, pausableJob } = request;
    // A plain lock is the two-round-trip minimum: SET NX PX here, compare-and-delete on release.
    if (tick === undefined && !fencing && pausableJob === '') {
      return this.monitor.call(
        () => this.client.set(lockKey, token, 'PX', ttlMs, 'NX'),
        (reply, late) => {
          if (reply === REFUSED) return then(REFUSED_REPLY);
          if (reply !== NO_REPLY) return then(reply === 'OK' ? ACQUIRED_UNFENCED : HELD);
          if (cancelIfLate) this.cancelWhenLate(late, (value) => value === 'OK', request);
          return then(UNAVAILABLE);
        },
        lockKey,
      );
    }
    // A job that may be paused, and serves no tick and issues no fencing token, needs only the
    // pause check before its SET NX: a smaller script than ACQUIRE.
    const send =
      tick === undefined && !fencing
        ? (afterNoScript: boolean) =>
            ACQUIRE_JOB.send(this.client, afterNoScript, 2, lockKey, request.pauseKey, token, ttlMs, pausableJob)
        : (afterNoScript: boolean) =>
            ACQUIRE.send(
              this.client,
              afterNoScript,
              3,
              lockKey,
              request.stateKey,
              request.pauseKey || request.stateKey,
              token,
              ttlMs,
              tick ?? '',
              fencing ? '1' : '',
              request.tickField,
              request.tickAheadLimitMs,
              request.stateRetentionMs,
              pausableJob,
            );
    return this.monitor.call(
      send,
      (reply, late) => {
        if (reply === REFUSED) return then(REFUSED_REPLY);
        if (reply === NO_REPLY) {
          if (cancelIfLate) this.cancelWhenLate(late, (value) => Number(value) > 0, request);
          return then(UNAVAILABLE);
        }
        if (Array.isArray(reply) && reply[0] === ACQUIRE_CLOCK_SKEW) {
          return then({ kind: 'clock-skew', offsetMs: Date.now() - Number(reply[1]) });
        }
        const code = Number(reply);
        if (code === ACQUIRE_HELD) return then(HELD);
        if (code === ACQUIRE_TICK_DONE) return then(TICK_SERVED);
        if (code === ACQUIRE_PAUSED) return then(PAUSED);
        return then(code === ACQUIRE_UNFENCED ? ACQUIRED_UNFENCED : { kind: 'acquired', fencingToken: code });
      },
      lockKey,
    );
  }

  cancel(request: LockRequest): Promise<void> {
    const { lockKey, token, tick } = request;
    if (tick === undefined) return this.release(lockKey, token, 0, () => undefined);
    return this.monitor.call(
      (afterNoScript) =>
        CANCEL_ACQUISITION.send(
          this.client,
          afterNoScript,
          2,
          lockKey,
          request.stateKey,
          token,
          tick,
          request.tickField,
        ),
      () => undefined,
    );
  }

  extend(lockKey: string, token: string, ttlMs: number): Promise<OwnerReply> {
    return this.monitor.call(
      (afterNoScript) => EXTEND_IF_OWNER.send(this.client, afterNoScript, 1, lockKey, token, ttlMs),
      toOwnerReply,
      lockKey,
    );
  }

  release<R>(
    lockKey: string,
    token: string,
    holdMs: number,
    then: (reply: OwnerReply) => R,
    record?: RunHistoryWrite,
  ): Promise<R> {
    return this.monitor.call(
      (afterNoScript) =>
        record
          ? RELEASE_AND_RECORD.send(
              this.client,
              afterNoScript,
              2,
              lockKey,
              record.streamKey,
              token,
              holdMs,
              record.maxLength,
              record.retentionMs,
              ...record.fields,
            )
          : RELEASE_IF_OWNER.send(this.client, afterNoScript, 1, lockKey, token, holdMs),
      (reply) => then(toOwnerReply(reply)),
      lockKey,
    );
  }

  recordRun(record: RunHistoryWrite): Promise<void> {
    return this.monitor.call(
      () =>
        this.client
          .multi()
          .xadd(record.streamKey, 'MAXLEN', '~', record.maxLength, '*', ...record.fields)
          .pexpire(record.streamKey, record.retentionMs)
          .exec(),
      () => undefined,
      record.streamKey,
    );
  }

  /**
   * Sets the fields now if connected, and again after every reconnection (a Redis restarted
   * without persistence, or a failover, may have lost them). Never waits for a connection: a
   * declaration must not hold up a boot while Redis is down.
   */
  declare(key: string, fields: readonly string[], onlyWhereAbsent = false): Promise<void> {
    const declared = this.declarations.get(key) ?? { fields: new Map<string, string>(), onlyWhereAbsent };
    for (let i = 0; i + 1 < fields.length; i += 2) declared.fields.set(fields[i], fields[i + 1]);
    this.declarations.set(key, declared);
    return this.monitor.isReady ? this.sendDeclaration(key, declared) : Promise.resolve();
  }

  private sendDeclaration(key: string, { fields, onlyWhereAbsent }: Declared): Promise<void> {
    const send = (): Promise<unknown> =>
      onlyWhereAbsent
        ? Promise.all([...fields].map(([field, value]) => this.client.hsetnx(key, field, value)))
        : this.client.hset(key, Object.fromEntries(fields));
    return this.monitor.call(send, () => undefined, key);
  }

  probe(): Promise<ServerProbe[]> {
    const sentAt = monotonicNow();
    const wallAtSend = Date.now();
    return this.monitor.call(
      () => this.client.time(),
      (reply): ServerProbe[] => {
        const server = this.label;
        if (reply === NO_REPLY) return [{ server, error: `no answer within ${this.timeoutMs} ms` }];
        if (reply === REFUSED) return [{ server, error: 'Redis refused these settings (see the error logged)' }];
        const latencyMs = monotonicNow() - sentAt;
        const [seconds, micros] = reply as [string | number, string | number];
        const serverMs = Number(seconds) * 1000 + Number(micros) / 1000;
        return [{ server, latencyMs, clockOffsetMs: wallAtSend + latencyMs / 2 - serverMs }];
      },
    );
  }

  driftMs(): number {
    return 0; // one server's clock times the TTL, and the holder's local view errs on the short side
  }

  async close(): Promise<void> {
    this.client.off('ready', this.onReady);
    if (this.ownsClient) await this.disconnect();
    this.monitor.detach();
    // Nothing waits on this store any more: settle what is left now, and leave no timer armed.
    this.monitor.deadlines.expireAll();
  }

  private async disconnect(): Promise<void> {
    // The client is being discarded: errors of a connection cut short must not reach ioredis's
    // "Unhandled error event" printer.
    this.client.on('error', () => undefined);
    if (this.client.status === 'ready') {
      await this.monitor.call(
        () => this.client.quit(),
        () => undefined,
      );
    }
    // On a client that has already ended, ioredis's disconnect() would arm a 2 s timer for nothing.
    if (this.client.status !== 'end') this.client.disconnect();
    markEnded(this.client);
    // Resolve once the socket is closed, so nothing of the connection (ioredis's own disconnect
    // timer included) outlives close(); bounded, like every wait on Redis.
    if (this.client.status === 'end') return;
    // The socket's own 'close' as well as ioredis's 'end': ioredis emits its events on
    // process.nextTick, which a test's fake timers may hold until the test advances time.
    const socket = isCluster(this.client) ? undefined : (this.client.stream as Socket | undefined);
    if (socket?.closed) return;
    const client = this.client;
    let closed!: () => void;
    const ended = new Promise<void>((resolve) => (closed = resolve));
    socket?.once('close', closed);
    client.once('end', closed);
    await raceDeadline(ended, this.timeoutMs, () => undefined);
    socket?.off('close', closed);
    client.off('end', closed);
  }

  /** An acquisition that lands after the deadline would hold a lock (and a tick) no one uses. */
  private cancelWhenLate(
    late: Promise<unknown> | undefined,
    granted: (reply: unknown) => boolean,
    request: LockRequest,
  ): void {
    late?.then(
      (reply) => {
        if (granted(reply)) void this.cancel(request);
      },
      () => undefined,
    );
  }

  private readonly onReady = (): void => {
    this.loadScripts();
    for (const [key, fields] of this.declarations) void this.sendDeclaration(key, fields);
  };

  private readonly loadScripts = (): void => {
    // A Cluster runs scripts on the master of each key's slot: every master needs them.
    const targets = isCluster(this.client) ? this.client.nodes('master') : [this.client];
    const loads = targets.flatMap((target) =>
      LOCK_SCRIPTS.map((script) =>
        script.load(target).then(
          () => undefined,
          (error: unknown) => {
            // An ACL user without EVAL or SCRIPT: these settings cannot take a lock.
            if (classifyReplyError(error) === 'configuration') {
              this.monitor.refused(error as Error, 'configuration', undefined, true);
            }
          },
        ),
      ),
    );
    this.scriptsLoaded = Promise.all(loads).then(() => undefined);
  };
}

/** Fields a replica declared in one hash, and whether they are set only where absent (first seen). */
interface Declared {
  readonly fields: Map<string, string>;
  readonly onlyWhereAbsent: boolean;
}

/**
 * ioredis ends a client when its socket closes; a client waiting between reconnection attempts has
 * none, so after `disconnect()` it would report 'reconnecting' forever although it never reconnects.
 */
function markEnded(client: Redis | Cluster): void {
  const settable = client as unknown as { setStatus?: (status: 'end') => void };
  if (client.status === 'reconnecting' && typeof settable.setStatus === 'function') settable.setStatus('end');
}
