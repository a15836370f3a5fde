import { monotonicNow } from '../../clock';
import { describeError } from '../../errors';
import { classifyReplyError } from '../reply-errors';
import { isNoScriptError } from '../scripts/lua-script';
import { Deadlined, type DeadlineQueue } from './deadline-queue';

/** What `call` hands its `settle` callback when no reply came in time. */
export const NO_REPLY: unique symbol = Symbol('no reply from Redis in time');

/** What `call` hands its `settle` callback when Redis is up but refused the command (see reply-errors). */
export const REFUSED: unique symbol = Symbol('refused by Redis');

/** Sends one command. `afterNoScript`: Redis lost the script, so send its source with EVAL. */
export type SendCommand<T> = (afterNoScript: boolean) => Promise<T>;

/** Turns a reply, or NO_REPLY (then `late` settles if the reply still comes), into the caller's answer. */
export type SettleReply<T, R> = (reply: T | typeof NO_REPLY | typeof REFUSED, late?: Promise<T>) => R;

/** What a call in flight reports to the connection it is sent on. */
export interface CallObserver {
  readonly deadlines: DeadlineQueue;
  /** The command is about to be written (the write may be held back until the end of the tick). */
  beforeSend(call: Deadlined): void;
  /** A reply came: Redis works. */
  replied(): void;
  /** No reply in time, or the connection failed. */
  failed(reason: string): void;
  /** Redis is up and refused the command for a reason that is not an outage. */
  refused(error: Error, kind: 'configuration' | 'data', key: string | undefined): void;
}

/** One command in flight, settled once: by its reply, by an error, or by its deadline. */
export class PendingCall<T, R> extends Deadlined {
  private pending: Promise<T> | undefined;
  private retriedScript = false;

  constructor(
    private readonly connection: CallObserver,
    private readonly sendCommand: SendCommand<T>,
    private readonly settle: SettleReply<T, R>,
    private readonly resolve: (answer: R) => void,
    private readonly timeoutMs: number,
    private readonly key: string | undefined,
  ) {
    super(monotonicNow() + timeoutMs);
    connection.deadlines.add(this);
  }

  send(afterNoScript: boolean): void {
    try {
      this.connection.beforeSend(this);
      this.pending = this.sendCommand(afterNoScript);
    } catch (error) {
      this.pending = Promise.reject(error);
    }
    this.pending.then(this.onReply, this.onError);
  }

  expire(): void {
    this.connection.failed(`no reply within ${this.timeoutMs} ms`);
    this.resolve(this.settle(NO_REPLY, this.pending));
  }

  private readonly onReply = (value: T): void => {
    if (!this.queued) return; // already expired
    this.connection.deadlines.remove(this);
    this.connection.replied();
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
    this.connection.deadlines.remove(this);
    const kind = classifyReplyError(error);
    if (kind === 'outage') {
      this.connection.failed(describeError(error));
      return this.resolve(this.settle(NO_REPLY));
    }
    this.connection.refused(error as Error, kind, this.key);
    this.resolve(this.settle(REFUSED));
  };
}
