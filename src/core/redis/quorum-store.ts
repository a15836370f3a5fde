import { monotonicNow } from '../clock';
import { backoffDelay, sleep } from '../waits';
import type { AcquireReply, LockRequest, LockStore, OwnerReply, RunHistoryWrite, ServerProbe } from '../lock-store';
import type { RedisStore } from './redis-store';

const same = <T>(reply: T): T => reply;
/** The first pause after a split vote before voting again; it doubles per split, up to the max. */
const SPLIT_RETRY_MS = 30;
const SPLIT_RETRY_MAX_MS = 400;

/**
 * Redlock over independent Redis masters: a lock is held when a majority granted it within its
 * validity (TTL minus the time the acquisition took and an allowance for clock drift). Releases
 * and extensions go to every node.
 *
 * No fencing tokens: each node counts on its own, and no majority's count is ordered against
 * another's, so a number from here would promise an order it cannot keep.
 */
export class QuorumStore implements LockStore {
  readonly ttlClock = monotonicNow;
  readonly keepsLedger = false;
  readonly quorum: number;

  constructor(
    private readonly nodes: readonly RedisStore[],
    readonly label: string,
    /** The deadline of one acquisition, votes retried after a split included. */
    private readonly timeoutMs: number,
  ) {
    this.quorum = Math.floor(nodes.length / 2) + 1;
  }

  configurationProblem(): Error | undefined {
    return this.nodes.map((node) => node.configurationProblem()).find((problem) => problem !== undefined);
  }

  hasConnected(): boolean {
    return this.nodes.filter((node) => node.hasConnected()).length >= this.quorum;
  }

  isReady(): boolean {
    return this.nodes.filter((node) => node.isReady()).length >= this.quorum;
  }

  async waitForReady(timeoutMs: number): Promise<boolean> {
    const ready = await Promise.all(this.nodes.map((node) => node.waitForReady(timeoutMs)));
    return ready.filter(Boolean).length >= this.quorum;
  }

  /** Each node cancels a late acquisition by itself, whatever the caller asks (`_cancelIfLate`). */
  async acquire<R>(request: LockRequest, _cancelIfLate: boolean, then: (reply: AcquireReply) => R): Promise<R> {
    return then(await this.acquireOnMajority(request));
  }

  async cancel(request: LockRequest): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.cancel(request)));
  }

  async extend(lockKey: string, token: string, ttlMs: number): Promise<OwnerReply> {
    return this.majority(await Promise.all(this.nodes.map((node) => node.extend(lockKey, token, ttlMs))));
  }

  async release<R>(
    lockKey: string,
    token: string,
    holdMs: number,
    then: (reply: OwnerReply) => R,
    record?: RunHistoryWrite,
  ): Promise<R> {
    const replies = await Promise.all(this.nodes.map((node) => node.release(lockKey, token, holdMs, same, record)));
    return then(this.majority(replies));
  }

  /** Every node keeps its own history, as it keeps its own locks. */
  async recordRun(record: RunHistoryWrite): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.recordRun(record)));
  }

  async declare(key: string, fields: readonly string[], onlyWhereAbsent = false): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.declare(key, fields, onlyWhereAbsent)));
  }

  /**
   * A ledger on independent nodes would need a quorum of its own: job policies are refused at boot
   * over a quorum (`policies/policy-support.ts`), so nothing is written here.
   */
  settleOccurrence(): Promise<void> {
    return Promise.resolve();
  }

  /** No ledger over a quorum (see `settleOccurrence`). */
  readLedger(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  /** No policy over a quorum (see `settleOccurrence`). */
  countFailures(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  preparePolicies(): void {}

  /** Heartbeats serve the ledger only: none over a quorum. */
  beat(): Promise<void> {
    return Promise.resolve();
  }

  alive(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  async probe(): Promise<ServerProbe[]> {
    return (await Promise.all(this.nodes.map((node) => node.probe()))).flat();
  }

  driftMs(ttlMs: number): number {
    return Math.floor(ttlMs * 0.01) + 2; // Redlock's allowance for clock drift between the nodes
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.close()));
  }

  /**
   * Votes until a majority grants the lock or the deadline passes. A vote we took part in that
   * we did not win (the nodes may have split between contenders) is given back and tried again
   * after a growing random pause, so contenders that collided drift apart; a vote in which no node
   * granted us anything is lost to someone else and not retried.
   */
  private async acquireOnMajority(request: LockRequest): Promise<AcquireReply> {
    const deadline = monotonicNow() + this.timeoutMs;
    for (let retry = 0; ; retry++) {
      const { reply, split } = await this.vote(request);
      const leftMs = deadline - monotonicNow();
      if (!split || leftMs <= SPLIT_RETRY_MS) return reply;
      await sleep(Math.min(leftMs - SPLIT_RETRY_MS, backoffDelay(retry, SPLIT_RETRY_MS, SPLIT_RETRY_MAX_MS)));
    }
  }

  /**
   * One vote, decided as soon as its outcome is known: a majority granted (within the lock's
   * validity), or too many nodes answered otherwise for a majority to be possible. Grants that
   * come after a failed vote is decided are given back as they come.
   */
  private vote(request: LockRequest): Promise<{ reply: AcquireReply; split: boolean }> {
    const started = monotonicNow();
    const perNode = { ...request, fencing: false };
    // `buffered` comes from job policies' claims only, which a quorum never sends (refused at boot).
    const count = {
      acquired: 0,
      held: 0,
      buffered: 0,
      'tick-served': 0,
      paused: 0,
      'clock-skew': 0,
      refused: 0,
      unavailable: 0,
    };
    let answered = 0;
    let decided: 'won' | 'lost' | undefined;
    return new Promise((resolve) => {
      const lose = (reply: AcquireReply): void => {
        decided = 'lost';
        // Give back what the minority granted, and the tick it recorded there (only there: on the
        // other nodes a recorded tick is another replica's).
        replies.forEach((answer, i) => answer?.kind === 'acquired' && void this.nodes[i].cancel(perNode));
        // With grants of our own, nothing says a single contender won: the other grants and
        // recorded ticks may be those of other failed votes, which they are giving back too.
        resolve({ reply, split: count.acquired > 0 && (reply.kind === 'held' || reply.kind === 'tick-served') });
      };
      const replies: (AcquireReply | undefined)[] = this.nodes.map(() => undefined);
      this.nodes.forEach((node, i) =>
        node.acquire(perNode, true, (reply) => {
          replies[i] = reply;
          answered++;
          count[reply.kind]++;
          if (decided === 'lost') {
            if (reply.kind === 'acquired') void node.cancel(perNode);
            return;
          }
          if (decided) return;
          if (count.acquired >= this.quorum) {
            const validityMs = request.ttlMs - (monotonicNow() - started) - this.driftMs(request.ttlMs);
            if (validityMs > 0) {
              decided = 'won';
              resolve({ reply: { kind: 'acquired', fencingToken: undefined }, split: false });
            } else lose({ kind: 'unavailable' });
            return;
          }
          const unanswered = this.nodes.length - answered;
          if (count.acquired + unanswered >= this.quorum) return; // a majority is still possible
          // Whether the job is paused on a majority is known once enough flags, or every node, answered.
          if (count.paused > 0 && count.paused < this.quorum && unanswered > 0) return;
          lose(this.verdict(count, replies));
        }),
      );
    });
  }

  /** Why a vote that no majority won came to nothing. */
  private verdict(
    count: Record<AcquireReply['kind'], number>,
    replies: readonly (AcquireReply | undefined)[],
  ): AcquireReply {
    if (count.unavailable > this.nodes.length - this.quorum) return { kind: 'unavailable' };
    const skewed = replies.find((reply) => reply?.kind === 'clock-skew' || reply?.kind === 'refused');
    if (skewed) return skewed;
    // Paused only where a majority holds the flag: a minority's flag leaves a majority to grant the
    // lock, so a vote lost for other reasons (a stale lock that will expire) is held, and retried.
    if (count.paused >= this.quorum) return { kind: 'paused' };
    // A tick counts as served only where a majority served it: failed votes hand theirs back.
    if (count['tick-served'] >= this.quorum) return { kind: 'tick-served' };
    return { kind: 'held' };
  }

  private majority(replies: OwnerReply[]): OwnerReply {
    if (replies.filter((reply) => reply === 'done').length >= this.quorum) return 'done';
    if (replies.filter((reply) => reply === 'not-owner').length > this.nodes.length - this.quorum) return 'not-owner';
    return 'unknown';
  }
}
