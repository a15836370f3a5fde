import { monotonicNow } from '../../clock';
import type { LockEvents } from '../../events/lock-events';
import { type LockLogger, logInfo } from '../../logger';
import { ACL_COMMANDS, isAclRefusal } from '../reply-errors';

/** The same refusal is logged at most this often. */
const REFUSAL_LOG_EVERY_MS = 60_000;

/**
 * Tells the app when Redis becomes unavailable and when it is back, once each however many calls
 * fall inside the outage (a warning, an info line, `outage-started` / `outage-ended` events), and
 * logs what Redis refused as errors, the same one at most once a minute.
 */
export class OutageLog {
  private reason: string | undefined;
  private startedAt = 0;
  private lastRefusal = { message: '', at: -Infinity };
  private neverConnectedSaidAt = -Infinity;

  constructor(
    private readonly logger: LockLogger,
    private readonly redisLabel: string,
    /** What the outage warning says happens meanwhile. */
    private readonly whileDown: string,
    private readonly events: LockEvents | undefined,
  ) {}

  get inOutage(): boolean {
    return this.reason !== undefined;
  }

  /**
   * Redis stopped answering. `neverConnected`: it has not answered once since the client was
   * created (a wrong host, port or scheme is the usual cause), an error rather than a warning.
   */
  started(reason: string, neverConnected = false): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.startedAt = monotonicNow();
    if (neverConnected) this.logNeverConnected(reason);
    else
      this.logger.warn(`Redis at ${this.redisLabel} is unavailable (${reason}); ${this.whileDown} until it is back.`);
    if (this.events?.active) {
      this.events.emit({ type: 'outage-started', store: this.redisLabel, reason, durationMs: undefined });
    }
  }

  /** Said again, at most once a minute, while a connection that was never made still is not. */
  stillUnreachable(reason: string): void {
    if (this.reason !== undefined && monotonicNow() - this.neverConnectedSaidAt >= REFUSAL_LOG_EVERY_MS) {
      this.logNeverConnected(reason);
    }
  }

  private logNeverConnected(reason: string): void {
    this.neverConnectedSaidAt = monotonicNow();
    this.logger.error(
      `Redis at ${this.redisLabel} has not been reachable since this process started (${reason}); ${this.whileDown} ` +
        'until it is. Check the address (host, port, redis:// or rediss://) and that Redis runs there.',
    );
  }

  ended(): void {
    if (this.reason === undefined) return;
    const reason = this.reason;
    this.reason = undefined;
    logInfo(this.logger, `Redis at ${this.redisLabel} is reachable again; locks are taken in Redis again.`);
    if (this.events?.active) {
      const durationMs = monotonicNow() - this.startedAt;
      this.events.emit({ type: 'outage-ended', store: this.redisLabel, reason, durationMs });
    }
  }

  /** Logs a refusal that is not an outage: settings Redis rejects, or a key of another type. */
  refused(error: Error, kind: 'configuration' | 'data', key: string | undefined): void {
    const message =
      kind === 'data'
        ? `Redis at ${this.redisLabel} refused a lock command on ${key ?? 'a lock key'}: ${error.message}. That lock is not taken, and its job does not run, until the key holds what the library wrote there (delete it).`
        : `Redis at ${this.redisLabel} refused the lock settings: ${error.message.replace(/\.$/, '')}. No lock is taken, and no guarded job runs, until ${
            isAclRefusal(error)
              ? `the ACL user (username, REDIS_USERNAME) is allowed ${ACL_COMMANDS}`
              : 'the settings are fixed (password, username, db)'
          }.`;
    const now = monotonicNow();
    if (message === this.lastRefusal.message && now - this.lastRefusal.at < REFUSAL_LOG_EVERY_MS) return;
    this.lastRefusal = { message, at: now };
    this.logger.error(message);
  }
}
