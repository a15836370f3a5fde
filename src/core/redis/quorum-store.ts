import { monotonicNow } from '../clock';
import type { AcquireReply, LockRequest, LockStore, OwnerReply } from '../lock-store';
import type { RedisStore } from './redis-store';

const same = <T>(reply: T): T => reply;

/**
 * Redlock over independent Redis masters: a lock is held when a majority granted it within its
 * validity (TTL minus the time the acquisition took and an allowance for clock drift). Releases
 * and extensions go to every node.
 *
 * No fencing tokens: each node counts on its own, and no majority's count is ordered against
 * another's, so a number from here would promise an order it cannot keep.
 */
export class QuorumStore implements LockStore {
  readonly quorum: number;

  constructor(
    private readonly nodes: readonly RedisStore[],
    readonly label: string,
  ) {
    this.quorum = Math.floor(nodes.length / 2) + 1;
  }

  configurationProblem(): Error | undefined {
    return this.nodes.map((node) => node.configurationProblem()).find((problem) => problem !== undefined);
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

  async release<R>(lockKey: string, token: string, holdMs: number, then: (reply: OwnerReply) => R): Promise<R> {
    return then(this.majority(await Promise.all(this.nodes.map((node) => node.release(lockKey, token, holdMs, same)))));
  }

  driftMs(ttlMs: number): number {
    return Math.floor(ttlMs * 0.01) + 2; // Redlock's allowance for clock drift between the nodes
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.close()));
  }

  private async acquireOnMajority(request: LockRequest): Promise<AcquireReply> {
    const started = monotonicNow();
    const perNode = { ...request, fencing: false };
    const replies = await Promise.all(this.nodes.map((node) => node.acquire(perNode, true, same)));
    const granted = replies.filter((reply) => reply.kind === 'acquired').length;
    const validityMs = request.ttlMs - (monotonicNow() - started) - this.driftMs(request.ttlMs);
    if (granted >= this.quorum && validityMs > 0) return { kind: 'acquired', fencingToken: undefined };

    // Not ours after all: give back what the minority granted, and the tick they recorded there
    // (only there: on the other nodes a recorded tick is another replica's).
    replies.forEach((reply, i) => reply.kind === 'acquired' && void this.nodes[i].cancel(perNode));
    const count = (kind: AcquireReply['kind']) => replies.filter((reply) => reply.kind === kind).length;
    if (count('unavailable') > this.nodes.length - this.quorum) return { kind: 'unavailable' };
    const skewed = replies.find((reply) => reply.kind === 'clock-skew' || reply.kind === 'refused');
    if (skewed) return skewed;
    // A majority that served this tick exists once any node reports it served with no quorum granted.
    return count('tick-served') > 0 ? { kind: 'tick-served' } : { kind: 'held' };
  }

  private majority(replies: OwnerReply[]): OwnerReply {
    if (replies.filter((reply) => reply === 'done').length >= this.quorum) return 'done';
    if (replies.filter((reply) => reply === 'not-owner').length > this.nodes.length - this.quorum) return 'not-owner';
    return 'unknown';
  }
}
