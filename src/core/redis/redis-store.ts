import type { Cluster, Redis } from 'ioredis';
import type { AcquireReply, LockRequest, LockStore, OwnerReply } from '../lock-store';
import { isCluster, type LockLogger } from '../lock-options';
import { ConnectionMonitor, NO_REPLY } from './connection-monitor';
import {
  ACQUIRE,
  ACQUIRE_HELD,
  ACQUIRE_TICK_DONE,
  ACQUIRE_UNFENCED,
  EXTEND_IF_OWNER,
  LOCK_SCRIPTS,
  RELEASE_IF_OWNER,
} from './lock-scripts';

const ACQUIRED_UNFENCED: AcquireReply = { kind: 'acquired', fencingToken: undefined };
const HELD: AcquireReply = { kind: 'held' };
const TICK_SERVED: AcquireReply = { kind: 'tick-served' };
const UNAVAILABLE: AcquireReply = { kind: 'unavailable' };

/** What an EXTEND_IF_OWNER or RELEASE_IF_OWNER reply means. */
const toOwnerReply = (reply: unknown): OwnerReply =>
  reply === NO_REPLY ? 'unknown' : reply === 1 ? 'done' : 'not-owner';

/** Locks on one Redis deployment: a standalone server, a Sentinel-managed master, or a Cluster. */
export class RedisStore implements LockStore {
  private readonly monitor: ConnectionMonitor;

  constructor(
    readonly client: Redis | Cluster,
    private readonly ownsClient: boolean,
    readonly label: string,
    timeoutMs: number,
    logger: LockLogger,
    whileDown: string,
  ) {
    this.monitor = new ConnectionMonitor(client, logger, label, whileDown, ownsClient, timeoutMs);
    client.on('ready', this.loadScripts);
    if (client.status === 'ready') this.loadScripts();
  }

  isReady(): boolean {
    return this.monitor.isReady;
  }

  waitForReady(timeoutMs: number): Promise<boolean> {
    return this.monitor.waitForReady(timeoutMs);
  }

  acquire<R>(request: LockRequest, releaseIfLate: boolean, then: (reply: AcquireReply) => R): Promise<R> {
    const { lockKey, token, ttlMs, tick, fencing } = request;
    // A plain lock is the two-round-trip minimum: SET NX PX here, compare-and-delete on release.
    if (tick === undefined && !fencing) {
      return this.monitor.call(
        () => this.client.set(lockKey, token, 'PX', ttlMs, 'NX'),
        (reply, late) => {
          if (reply !== NO_REPLY) return then(reply === 'OK' ? ACQUIRED_UNFENCED : HELD);
          if (releaseIfLate) this.releaseWhenLate(late, (value) => value === 'OK', lockKey, token);
          return then(UNAVAILABLE);
        },
      );
    }
    return this.monitor.call(
      (afterNoScript) =>
        ACQUIRE.send(
          this.client,
          afterNoScript,
          2,
          lockKey,
          request.stateKey,
          token,
          ttlMs,
          tick ?? '',
          fencing ? '1' : '',
        ),
      (reply, late) => {
        if (reply === NO_REPLY) {
          if (releaseIfLate) this.releaseWhenLate(late, (value) => Number(value) > 0, lockKey, token);
          return then(UNAVAILABLE);
        }
        const code = Number(reply);
        if (code === ACQUIRE_HELD) return then(HELD);
        if (code === ACQUIRE_TICK_DONE) return then(TICK_SERVED);
        return then(code === ACQUIRE_UNFENCED ? ACQUIRED_UNFENCED : { kind: 'acquired', fencingToken: code });
      },
    );
  }

  extend(lockKey: string, token: string, ttlMs: number): Promise<OwnerReply> {
    return this.monitor.call(
      (afterNoScript) => EXTEND_IF_OWNER.send(this.client, afterNoScript, 1, lockKey, token, ttlMs),
      toOwnerReply,
    );
  }

  release<R>(lockKey: string, token: string, holdMs: number, then: (reply: OwnerReply) => R): Promise<R> {
    return this.monitor.call(
      (afterNoScript) => RELEASE_IF_OWNER.send(this.client, afterNoScript, 1, lockKey, token, holdMs),
      (reply) => then(toOwnerReply(reply)),
    );
  }

  driftMs(): number {
    return 0; // one server's clock times the TTL, and the holder's local view errs on the short side
  }

  async close(): Promise<void> {
    this.client.off('ready', this.loadScripts);
    this.monitor.detach();
    if (!this.ownsClient) return;
    // The client is being discarded: errors of a connection cut short must not reach ioredis's
    // "Unhandled error event" printer.
    this.client.on('error', () => undefined);
    if (this.client.status === 'ready') {
      await this.monitor.call(
        () => this.client.quit(),
        () => undefined,
      );
    }
    this.client.disconnect();
    markEnded(this.client);
  }

  /** An acquisition that lands after the deadline would hold a lock no one uses until its TTL runs out. */
  private releaseWhenLate(
    late: Promise<unknown> | undefined,
    granted: (reply: unknown) => boolean,
    lockKey: string,
    token: string,
  ): void {
    late?.then(
      (reply) => {
        if (granted(reply)) void this.release(lockKey, token, 0, () => undefined);
      },
      () => undefined,
    );
  }

  private readonly loadScripts = (): void => {
    // A Cluster runs scripts on the master of each key's slot: every master needs them.
    const targets = isCluster(this.client) ? this.client.nodes('master') : [this.client];
    for (const target of targets) {
      for (const script of LOCK_SCRIPTS) script.load(target).catch(() => undefined);
    }
  };
}

/**
 * ioredis ends a client when its socket closes; a client waiting between reconnection attempts has
 * none, so after `disconnect()` it would report 'reconnecting' forever although it never reconnects.
 */
function markEnded(client: Redis | Cluster): void {
  const settable = client as unknown as { setStatus?: (status: 'end') => void };
  if (client.status === 'reconnecting' && typeof settable.setStatus === 'function') settable.setStatus('end');
}
