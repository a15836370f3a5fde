import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import { LockEngine } from '../../src';
import { CronSchedule, JobDefinition } from '../../src/core';
import { RELEASE_AND_RECORD, SETTLE_OCCURRENCE } from '../../src/core/redis/scripts';
import { CAN_CONTROL_REDIS, startTestRedis, type TestRedis } from '../support/redis-server';

const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

/** Blocks the event loop, as a long synchronous job or a GC pause would. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

/**
 * A command sent while no other call of the process is in flight leaves at once; commands sent in
 * one tick while others are in flight leave together, in writes of a bounded batch, the last at
 * the tick's end; a ledger write waits for the release sent after it. A stall in between delays
 * each held-back command by as long as it waited: only that long is added to its deadline.
 */
describeWithOwnRedis('deadlines of commands held back for one write', () => {
  let redis: TestRedis;
  let engine: LockEngine;

  beforeAll(async () => {
    redis = await startTestRedis();
    engine = new LockEngine({ url: redis.url, acquireTimeoutMs: 1_000, failMode: 'closed', logger: false });
    await engine.waitUntilConnected();
  });
  afterAll(async () => {
    redis.resume();
    await engine.close();
    await redis.dispose();
  });

  it('writes a lone command at once, not at the end of the tick', async () => {
    const taken = engine.acquireLock('held-back:lone', 10_000);
    stall(1_000); // Redis runs the SET meanwhile only if it was written before the stall
    expect(await taken).toBe(true);
    const remainingMs = await redis.client().pttl('lock:{held-back:lone}');
    expect(remainingMs).toBeLessThan(9_500);
    await engine.releaseLock('held-back:lone');
  });

  it('writes a long burst in batches during the tick, so Redis works while the client is still sending', async () => {
    // Held back for the whole tick, a burst's first command would wait for its last: Redis idle
    // while the client builds commands, then the client idle while Redis runs them all.
    const names = Array.from({ length: 40 }, (_, i) => `held-back:burst-${i}`);
    const taking = names.map((name) => engine.acquireLock(name, 10_000));
    stall(1_000); // Redis runs a command meanwhile only if it was written before the stall
    expect(await Promise.all(taking)).toEqual(names.map(() => true));
    const remainingMs = await Promise.all(names.map((name) => redis.client().pttl(`lock:{${name}}`)));
    expect(remainingMs[1]).toBeLessThan(9_500); // the burst's first batch ran during the stall
    expect(remainingMs[names.length - 1]).toBeGreaterThan(9_500); // its last command left when the tick ended
    await Promise.all(names.map((name) => engine.releaseLock(name)));
  });

  it('gives a command sent just before a stalled flush its own deadline, not the stall added to it', async () => {
    redis.pause(); // no reply comes: each decision is made by its deadline
    const sentAt = performance.now();
    const decidedAfter = (key: string, since: number) =>
      engine.acquireLock(key, 5_000).then(() => performance.now() - since);
    const lone = decidedAfter('held-back:lone-write', sentAt); // nothing else in flight: written at once
    const first = decidedAfter('held-back:first', sentAt); // held back for the tick's write
    stall(2_000);
    const sentSecondAt = performance.now();
    const second = decidedAfter('held-back:second', sentSecondAt);

    const [loneMs, firstMs, secondMs] = await Promise.all([lone, first, second]);
    redis.resume();

    // Written before the stall, the lone command's second of waiting ran during it: decided once the loop runs again.
    expect(loneMs).toBeGreaterThanOrEqual(1_950);
    expect(loneMs).toBeLessThan(2_900);
    // The first waited 2 s in the process before Redis could see it: its second of waiting starts then.
    expect(firstMs).toBeGreaterThanOrEqual(2_900);
    // The second left at once: it gets its own second, not three.
    expect(secondMs).toBeGreaterThanOrEqual(950);
    expect(secondMs).toBeLessThan(2_000);
  });

  it("writes a policy run's ledger write and its lock's release together, in one write", async () => {
    const job = new JobDefinition({
      name: 'HeldBack.withPolicy',
      key: 'held-back:policy',
      ttlMs: 5_000,
      schedule: () => new CronSchedule('* * * * * *', { timeZone: 'UTC' }),
      policies: { retry: { attempts: 2, backoffMs: 50 } },
    });
    // The socket of the engine's own connection (handing out its client would stop the coalescing).
    type Internals = { parts: { store: { client: { stream: Socket } } } };
    const socket = (engine as unknown as Internals).parts.store.client.stream;
    const writes: string[][] = [];
    const spy = (method: '_write' | '_writev') => {
      const original = socket[method] as (...args: unknown[]) => void;
      socket[method] = function (this: Socket, ...args: unknown[]) {
        const chunks = method === '_write' ? [args[0]] : (args[0] as { chunk: unknown }[]).map((c) => c.chunk);
        writes.push(chunks.map(String));
        return original.apply(this, args);
      } as never;
      return () => void (socket[method] = original as never);
    };
    const restore = [spy('_write'), spy('_writev')];
    try {
      expect(await engine.runDefinedJob(job, () => 'ran')).toBe('ran');
    } finally {
      for (const undo of restore) undo();
    }
    const carrying = (sha: string) => writes.findIndex((chunks) => chunks.some((chunk) => chunk.includes(sha)));
    expect(carrying(SETTLE_OCCURRENCE.sha)).toBeGreaterThanOrEqual(0);
    // The ledger first, then the release, in the same system call: Redis runs them back to back.
    expect(carrying(RELEASE_AND_RECORD.sha)).toBe(carrying(SETTLE_OCCURRENCE.sha));
    const [together] = writes.filter((chunks) => chunks.some((chunk) => chunk.includes(SETTLE_OCCURRENCE.sha)));
    const order = together.join('');
    expect(order.indexOf(SETTLE_OCCURRENCE.sha)).toBeLessThan(order.indexOf(RELEASE_AND_RECORD.sha));
  });

  it('holds back a command alone on its connection while another connection of the process has one in flight', async () => {
    // Replicas of a test fleet, or the masters of a Redlock quorum, sending at once from one
    // process: their commands leave together at the tick's end, after the code that built them.
    const other = new LockEngine({ url: redis.url, acquireTimeoutMs: 1_000, failMode: 'closed', logger: false });
    const remainingMs = (name: string) => redis.client().pttl(`lock:{held-back:${name}}`);
    try {
      await other.waitUntilConnected();
      const first = engine.acquireLock('held-back:fleet-first', 10_000); // nothing in flight: written at once
      const second = other.acquireLock('held-back:fleet-second', 10_000); // alone on its connection only
      stall(1_000); // Redis runs a command meanwhile only if it was written before the stall
      expect(await Promise.all([first, second])).toEqual([true, true]);
      expect(await remainingMs('fleet-first')).toBeLessThan(9_500);
      expect(await remainingMs('fleet-second')).toBeGreaterThan(9_500); // it left when the tick ended

      // Every call of this file has settled, by its reply or by its deadline: a lone command leaves at once again.
      const third = other.acquireLock('held-back:fleet-third', 10_000);
      stall(1_000);
      expect(await third).toBe(true);
      expect(await remainingMs('fleet-third')).toBeLessThan(9_500);
      await Promise.all([engine.releaseLock('held-back:fleet-first'), other.releaseLock('held-back:fleet-second')]);
      await other.releaseLock('held-back:fleet-third');
    } finally {
      await other.close();
    }
  });

  it("never holds back the user's own commands on the library's connection", async () => {
    const shared = new LockEngine({ url: redis.url, logger: false });
    try {
      await shared.waitUntilConnected();
      const lone = shared.acquireLock('held-back:user-lone', 5_000); // nothing else in flight: written at once
      const taking = shared.acquireLock('held-back:user', 5_000); // the library's command, held for this tick's write
      const client = shared.client as Redis; // handed out: from now on nothing is held back
      const sentAt = Date.now();
      const executed = client.time(); // the user's command, in the same tick
      stall(1_000);
      const [seconds, micros] = await executed;
      const executedAt = Number(seconds) * 1_000 + Number(micros) / 1_000;
      expect(executedAt - sentAt).toBeLessThan(500); // Redis ran it during the stall, not after
      expect(await Promise.all([lone, taking])).toEqual([true, true]);
    } finally {
      await shared.close();
    }
  });
});
