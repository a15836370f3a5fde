import { cronTick, LockEngine, type FailMode } from '../../src/core';
import { CAN_START_TOPOLOGIES, type IndependentMasters, startIndependentMasters } from '../support/redis-topologies';
import { DelayProxy } from '../support/tcp-proxy';

const describeTopology = CAN_START_TOPOLOGIES ? describe : describe.skip;

describeTopology('a Redlock quorum of five independent masters', () => {
  jest.setTimeout(60_000);
  let group: IndependentMasters;
  const engines: LockEngine[] = [];

  beforeAll(async () => {
    group = await startIndependentMasters(5);
  });
  afterAll(async () => {
    await Promise.all(engines.map((engine) => engine.close()));
    await group.disposeAll();
  });

  function engine(failMode: FailMode = 'open', acquireTimeoutMs = 300): LockEngine {
    const created = new LockEngine({
      nodes: group.masters.map((master) => master.url),
      failMode,
      acquireTimeoutMs,
      fencing: true, // asked for, yet a quorum cannot order tokens and issues none
      logger: false,
    });
    engines.push(created);
    return created;
  }

  async function nodesHolding(key: string, up = group.masters): Promise<number> {
    const answers = await Promise.all(up.map((master) => master.client().exists(`lock:{${key}}`)));
    return answers.filter((exists) => exists === 1).length;
  }

  it('skips a job paused on a majority of the nodes, and leaves no lock; a minority pause does not stop it', async () => {
    const locks = engine();
    await locks.waitUntilConnected(3_000);
    const pause = (nodes: number, paused: boolean) =>
      Promise.all(
        group.masters.slice(0, nodes).map((master) => {
          const flags = 'lock:{quorum:paused}:paused';
          return paused
            ? master.client().hset(flags, 'Reports.nightly', '{"by":"ops","at":1}')
            : master.client().hdel(flags, 'Reports.nightly');
        }),
      );
    const run = () => locks.runJob('Reports.nightly', 'quorum:paused', 10_000, () => 'ran');
    const events: string[] = [];
    const stop = locks.onEvent((event) => event.type === 'skipped' && events.push(event.reason));

    await pause(3, true); // three of five
    for (let i = 0; i < 5; i++) await expect(run()).resolves.toBeUndefined();
    expect(events).toEqual(['paused', 'paused', 'paused', 'paused', 'paused']);
    await new Promise((resolve) => setTimeout(resolve, 100)); // grants that came after the decision are given back
    expect(await nodesHolding('quorum:paused')).toBe(0);

    await pause(3, false);
    await pause(2, true); // two of five: the other three still make a majority
    for (let i = 0; i < 5; i++) await expect(run()).resolves.toBe('ran');
    stop();
    await pause(2, false);
  });

  it('runs a job paused on a minority once a stale lock on another node expires, within the deadline', async () => {
    const locks = engine('open', 1_000);
    await locks.waitUntilConnected(3_000);
    const flags = 'lock:{quorum:stale}:paused';
    await Promise.all(group.masters.slice(0, 2).map((master) => master.client().hset(flags, 'Reports.stale', '{}')));
    // A lock a crashed holder left on a third node: with the two pauses, no majority can grant at first.
    await group.masters[2].client().set('lock:{quorum:stale}', 'crashed-holder', 'PX', 400);
    const skips: string[] = [];
    const stop = locks.onEvent((event) => event.type === 'skipped' && skips.push(event.reason));

    await expect(locks.runJob('Reports.stale', 'quorum:stale', 10_000, () => 'ran')).resolves.toBe('ran');
    expect(skips).toEqual([]);
    stop();
    await Promise.all(group.masters.slice(0, 2).map((master) => master.client().del(flags)));
  });

  it('grants a lock to one holder, written on every node, and releases it everywhere', async () => {
    const [a, b] = [engine(), engine()];
    await Promise.all([a.waitUntilConnected(3_000), b.waitUntilConnected(3_000)]);
    const results = await Promise.all([a.acquireLock('quorum', 10_000), b.acquireLock('quorum', 10_000)]);
    const holder = results[0] ? a : b;
    expect([...results].sort()).toEqual([false, true]);
    expect(await nodesHolding('quorum')).toBeGreaterThanOrEqual(3);
    expect(holder.fencingToken('quorum')).toBeUndefined(); // a quorum issues no fencing tokens
    await holder.releaseLock('quorum');
    expect(await nodesHolding('quorum')).toBe(0);
  });

  it('serves each tick once across holders', async () => {
    const holders = [engine(), engine(), engine()];
    await Promise.all(holders.map((holder) => holder.waitUntilConnected(3_000)));
    const tick = cronTick('* * * * * *'); // an occurrence the Redis clock can judge
    const outcomes = await Promise.all(
      holders.map((holder) => holder.withLock('quorum:tick', 5_000, () => 'ran', { tick })),
    );
    expect(outcomes.filter((outcome) => outcome.ran)).toHaveLength(1);
  });

  it('keeps working with two of five masters down', async () => {
    const [a, b] = [engine(), engine()];
    await Promise.all([a.waitUntilConnected(3_000), b.waitUntilConnected(3_000)]);
    await Promise.all([group.masters[0].kill(), group.masters[1].kill()]);
    expect(await a.acquireLock('two-down', 10_000)).toBe(true);
    expect(await b.acquireLock('two-down', 10_000)).toBe(false);
    expect(a.isConnected()).toBe(true);
    await a.releaseLock('two-down');
    expect(await b.acquireLock('two-down', 10_000)).toBe(true);
    await b.releaseLock('two-down');
  });

  it.each<[FailMode, boolean]>([
    ['open', true],
    ['closed', false],
  ])('applies fail-%s within the deadline with three of five masters down', async (failMode, expected) => {
    if (group.masters[2].controllable) await group.masters[2].kill().catch(() => undefined);
    const locks = engine(failMode);
    await locks.waitUntilConnected(1_000);
    expect(locks.isConnected()).toBe(false);
    const started = Date.now();
    expect(await locks.acquireLock(`three-down-${failMode}`, 10_000)).toBe(expected);
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});

describeTopology('Redlock votes between contenders, through delaying proxies', () => {
  jest.setTimeout(60_000);
  let group: IndependentMasters;
  const proxies: DelayProxy[] = [];
  const engines: LockEngine[] = [];

  beforeAll(async () => {
    group = await startIndependentMasters(5);
  });
  afterAll(async () => {
    await Promise.all(engines.map((engine) => engine.close()));
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await group.disposeAll();
  });

  /** An engine whose link to each master is delayed by `delaysMs[i]`. */
  async function engineWithDelays(delaysMs: number[], options: { acquireTimeoutMs: number }): Promise<LockEngine> {
    const links = await Promise.all(group.masters.map((master, i) => DelayProxy.start(master, delaysMs[i])));
    proxies.push(...links);
    const engine = new LockEngine({
      nodes: links.map((link) => link.url),
      failMode: 'closed',
      logger: false,
      ...options,
    });
    engines.push(engine);
    expect(await engine.waitUntilConnected(3_000)).toBe(true);
    return engine;
  }

  it('runs each occurrence once when three contenders split every first vote between them', async () => {
    const fast = 0;
    const slow = 40;
    // Each contender reaches its own nodes first: A wins 0 and 1, B wins 2 and 3, C wins 4.
    const contenders = await Promise.all([
      engineWithDelays([fast, fast, slow, slow, slow], { acquireTimeoutMs: 1_500 }),
      engineWithDelays([slow, slow, fast, fast, slow], { acquireTimeoutMs: 1_500 }),
      engineWithDelays([slow, slow, slow, slow, fast], { acquireTimeoutMs: 1_500 }),
    ]);
    for (let round = 0; round < 5; round++) {
      const tick = cronTick('* * * * * *');
      const outcomes = await Promise.all(
        contenders.map((engine) => engine.withLock(`split:${round}`, 2_000, () => 'ran', { tick })),
      );
      expect(outcomes.filter((outcome) => outcome.ran)).toHaveLength(1);
    }
  });

  it('decides as soon as a majority answers, so one unresponsive node does not eat a short TTL', async () => {
    const engine = await engineWithDelays([0, 0, 0, 0, 2_000], { acquireTimeoutMs: 500 });
    const outcome = await engine.withLock('slow-node', 300, (lock) => lock.withoutRedis, {
      tick: cronTick('* * * * * *'),
    });
    expect(outcome).toEqual({ ran: true, result: false }); // taken in Redis, by the four nodes that answered
  });
});
