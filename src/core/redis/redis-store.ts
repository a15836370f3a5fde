import type { Cluster, Redis } from 'ioredis';
import type { AcquireReply, LockRequest, LockStore, OwnerReply } from '../lock-store';
import { isCluster, type LockLogger } from '../lock-options';
import { ConnectionMonitor } from './connection-monitor';
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

/** Locks on one Redis deployment: a standalone server, a Sentinel-managed master, or a Cluster. */
export class RedisStore implements LockStore {
  private readonly monitor: ConnectionMonitor;

  constructor(
    readonly client: Redis | Cluster,
    private readonly ownsClient: boolean,
    readonly label: string,
    private readonly timeoutMs: number,
    logger: LockLogger,
    whileDown: string,
  ) {
    this.monitor = new ConnectionMonitor(client, logger, label, whileDown, ownsClient);
    client.on('ready', this.loadScripts);
    if (client.status === 'ready') this.loadScripts();
  }

  isReady(): boolean {
    return this.monitor.isReady;
  }

  waitForReady(timeoutMs: number): Promise<boolean> {
    return this.monitor.waitForReady(timeoutMs);
  }

  async acquire(request: LockRequest, releaseIfLate: boolean): Promise<AcquireReply> {
    const { lockKey, stateKey, token, ttlMs, tick, fencing } = request;
    // A plain lock is the two-round-trip minimum: SET NX PX here, compare-and-delete on release.
    const plain = tick === undefined && !fencing;
    const reply = await this.monitor.call<unknown>(
      () =>
        plain
          ? this.client.set(lockKey, token, 'PX', ttlMs, 'NX')
          : ACQUIRE.run(this.client, [lockKey, stateKey], [token, ttlMs, tick ?? '', fencing ? '1' : '']),
      this.timeoutMs,
    );
    if (reply.ok) {
      if (plain) return reply.value === 'OK' ? ACQUIRED_UNFENCED : HELD;
      const code = Number(reply.value);
      if (code === ACQUIRE_HELD) return HELD;
      if (code === ACQUIRE_TICK_DONE) return TICK_SERVED;
      return code === ACQUIRE_UNFENCED ? ACQUIRED_UNFENCED : { kind: 'acquired', fencingToken: code };
    }
    if (releaseIfLate) {
      // An acquisition that lands after the deadline would hold a lock no one uses until its TTL runs out.
      reply.late?.then(
        (value) => {
          if (value === 'OK' || Number(value) > 0) void this.release(lockKey, token, 0);
        },
        () => undefined,
      );
    }
    return UNAVAILABLE;
  }

  async extend(lockKey: string, token: string, ttlMs: number): Promise<OwnerReply> {
    const reply = await this.monitor.call(
      () => EXTEND_IF_OWNER.run(this.client, [lockKey], [token, ttlMs]),
      this.timeoutMs,
    );
    return !reply.ok ? 'unknown' : reply.value === 1 ? 'done' : 'not-owner';
  }

  async release(lockKey: string, token: string, holdMs: number): Promise<OwnerReply> {
    const reply = await this.monitor.call(
      () => RELEASE_IF_OWNER.run(this.client, [lockKey], [token, holdMs]),
      this.timeoutMs,
    );
    return !reply.ok ? 'unknown' : reply.value === 1 ? 'done' : 'not-owner';
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
    if (this.client.status === 'ready') await this.monitor.call(() => this.client.quit(), this.timeoutMs);
    this.client.disconnect();
    markEnded(this.client);
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
