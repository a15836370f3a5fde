import type { Cluster, Redis } from 'ioredis';
import type { Socket } from 'node:net';
import { monotonicNow, withRealNextTickDuring } from '../clock';
import type { LockEvents } from '../events/lock-events';
import type { ServerProbe } from '../lock-store';
import type { LockLogger } from '../logger';
import { raceDeadline } from '../waits';
import { ConnectionMonitor, NO_REPLY, REFUSED } from './connection/connection-monitor';
import { isCluster } from './is-cluster';
import { classifyReplyError } from './reply-errors';
import { LOCK_SCRIPTS, type LuaScript } from './scripts';

/**
 * The life of one ioredis client in the library's hands: scripts loaded on each connection, the
 * readiness a caller may wait for, `TIME` probes, and closing without leaving a timer behind.
 */
export class RedisConnection {
  readonly monitor: ConnectionMonitor;
  /** The script loads of the latest connection. */
  private scriptsLoaded: Promise<void> = Promise.resolve();
  /** Scripts loaded on each connection besides the lock scripts (those of job policies, once used). */
  private readonly moreScripts: LuaScript[] = [];

  constructor(
    readonly client: Redis | Cluster,
    private readonly ownsClient: boolean,
    readonly label: string,
    private readonly timeoutMs: number,
    logger: LockLogger,
    whileDown: string,
    events: LockEvents | undefined,
    /** Called on each new connection, once its scripts are being loaded. */
    private readonly onReconnect: () => void,
  ) {
    this.monitor = new ConnectionMonitor(client, logger, label, whileDown, ownsClient, timeoutMs, events);
    this.monitor.onRecovered = onReconnect;
    client.on('ready', this.onReady);
    if (client.status === 'ready') this.loadScripts();
  }

  /** Resolves once connected and the scripts are loaded (so a refusal of them is known), or false after `timeoutMs`. */
  async waitForReady(timeoutMs: number): Promise<boolean> {
    const started = monotonicNow();
    if (!(await this.monitor.waitForReady(timeoutMs))) return false;
    await raceDeadline(this.scriptsLoaded, timeoutMs - (monotonicNow() - started), () => undefined);
    return this.monitor.configurationProblem === undefined;
  }

  probe(): Promise<ServerProbe[]> {
    const sentAt = monotonicNow();
    const wallAtSend = Date.now();
    return this.monitor.call(
      () => this.client.time(),
      (reply): ServerProbe[] => {
        const server = this.label;
        if (reply === NO_REPLY) {
          // Not connected: the client's own reason (ECONNREFUSED, a TLS mismatch) says more than the wait.
          const error = this.monitor.isReady
            ? `no answer within ${this.timeoutMs} ms`
            : this.monitor.unreachableReason();
          return [{ server, error }];
        }
        if (reply === REFUSED) return [{ server, error: 'Redis refused these settings (see the error logged)' }];
        const latencyMs = monotonicNow() - sentAt;
        const [seconds, micros] = reply as [string | number, string | number];
        const serverMs = Number(seconds) * 1000 + Number(micros) / 1000;
        return [{ server, latencyMs, clockOffsetMs: wallAtSend + latencyMs / 2 - serverMs }];
      },
    );
  }

  async close(): Promise<void> {
    this.client.off('ready', this.onReady);
    if (this.ownsClient) await this.disconnect();
    this.monitor.detach();
    // Nothing waits on this connection any more: settle what is left now, and leave no timer armed.
    this.monitor.deadlines.expireAll();
  }

  private async disconnect(): Promise<void> {
    // The client is being discarded: errors of a connection cut short must not reach ioredis's
    // "Unhandled error event" printer.
    this.client.on('error', () => undefined);
    const stream = isCluster(this.client) ? undefined : (this.client.stream as Socket | undefined);
    // ioredis emits 'close' and 'end' on process.nextTick from the socket's 'close' listener.
    if (stream && !stream.closed) withRealNextTickDuring(stream, 'close');
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
    if (stream?.closed) return;
    const client = this.client;
    let closed!: () => void;
    const ended = new Promise<void>((resolve) => (closed = resolve));
    stream?.once('close', closed);
    client.once('end', closed);
    await raceDeadline(ended, this.timeoutMs, () => undefined);
    stream?.off('close', closed);
    client.off('end', closed);
  }

  private readonly onReady = (): void => {
    this.loadScripts();
    this.onReconnect();
  };

  /**
   * Loads `scripts` now and on every new connection: a script's first call is then one round trip,
   * and a first call that got no reply in time (Redis frozen) cannot be lost to a late NOSCRIPT.
   */
  loadAlso(scripts: readonly LuaScript[]): void {
    const added = scripts.filter((script) => !this.moreScripts.includes(script));
    if (added.length === 0) return;
    this.moreScripts.push(...added);
    if (this.client.status === 'ready') this.loadScripts();
  }

  private readonly loadScripts = (): void => {
    // A Cluster runs scripts on the master of each key's slot: every master needs them.
    const targets = isCluster(this.client) ? this.client.nodes('master') : [this.client];
    const loads = targets.flatMap((target) =>
      [...LOCK_SCRIPTS, ...this.moreScripts].map((script) =>
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

/**
 * ioredis ends a client when its socket closes; a client waiting between reconnection attempts has
 * none, so after `disconnect()` it would report 'reconnecting' forever although it never reconnects.
 */
function markEnded(client: Redis | Cluster): void {
  const settable = client as unknown as { setStatus?: (status: 'end') => void };
  if (client.status === 'reconnecting' && typeof settable.setStatus === 'function') settable.setStatus('end');
}
