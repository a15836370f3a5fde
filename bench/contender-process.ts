/**
 * Each contender runs in a process of its own, driven by the parent over IPC, one request at a
 * time. Process-wide state then stays with the contender that caused it: on Node 20 the first
 * `AsyncLocalStorage.run()` (this library's `lockContext` option makes one per run)
 * installs promise hooks that slow every later promise of the process, and heaps and JIT state
 * differ between libraries. The parent still interleaves the contenders slice by slice.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { Redis } from 'ioredis';
import { CONTENDERS, type Cycler, type LockClient } from './contenders';
import {
  type ContentionSample,
  contention,
  type DecoratorHeapSample,
  decoratorHeap,
  type HeldMemorySample,
  heldLocksMemory,
  type LatencySlice,
  throughput,
  timeCycles,
} from './scenarios';

/** The requests a contender process answers, with their arguments and results. */
interface Requests {
  open: [Record<string, never>, void];
  latency: [{ key: string; ops: number }, LatencySlice];
  warmup: [{ key: string; ops: number }, void];
  throughput: [{ keyPrefix: string; ops: number; workers: number }, number];
  openReplicas: [{ count: number }, void];
  race: [{ key: string; rounds: number }, ContentionSample];
  memory: [{ count: number; concurrency: number }, HeldMemorySample];
  heap: [{ calls: number; concurrency: number; slices: number }, DecoratorHeapSample];
  cycle: [{ key: string }, void];
  scheduled: [{ key: string }, boolean];
  telemetrySeen: [Record<string, never>, { spans: number; runsCounted: number } | undefined];
  hold: [{ key: string }, void];
  tryHeld: [{ key: string }, boolean];
  unhold: [Record<string, never>, void];
  cold: [{ key: string }, void];
  close: [Record<string, never>, void];
}

const live = new Set<ChildProcess>();
// The parent ending for any reason (including the SIGINT/SIGTERM handler of redis-server.ts) ends its children.
process.once('exit', () => {
  for (const child of live) {
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

type Request = { [K in keyof Requests]: { seq: number; type: K; args: Requests[K][0] } }[keyof Requests];
type Reply = { seq: number; result?: unknown; error?: string; progress?: string };

/** The parent's handle on one contender's process. */
export class ContenderProcess {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(
    readonly id: string,
    private readonly child: ChildProcess,
    onProgress: (line: string) => void,
  ) {
    child.on('message', (reply: Reply) => {
      if (reply.progress !== undefined) return onProgress(`  ${id}: ${reply.progress}`);
      const waiter = this.waiting.get(reply.seq);
      this.waiting.delete(reply.seq);
      if (reply.error !== undefined) waiter?.reject(new Error(`${id}: ${reply.error}`));
      else waiter?.resolve(reply.result);
    });
    child.on('exit', (code) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`${id}'s process exited with ${code}`));
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  static spawn(id: string, url: string, redisPid: number, onProgress: (line: string) => void): ContenderProcess {
    const child = fork(__filename, [id, url, String(redisPid)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    return new ContenderProcess(id, child, onProgress);
  }

  call<K extends keyof Requests>(type: K, args: Requests[K][0]): Promise<Requests[K][1]> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ seq, type, args });
    });
  }

  /** Closes the contender's connections and waits for its process to exit (killed by PID after 5 s). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    const timer = setTimeout(() => process.kill(this.child.pid!, 'SIGKILL'), 5000);
    await this.call('close', {}).catch(() => undefined);
    await exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// The child side.

async function serve(id: string, url: string, redisPid: number): Promise<void> {
  // The parent going away (crash, Ctrl-C) ends this process too, also if it went while this one loaded.
  process.on('disconnect', () => process.exit(1));
  if (!process.connected) process.exit(1);
  const contender = CONTENDERS.find((c) => c.id === id);
  if (!contender) throw new Error(`Unknown contender ${id}`);
  let cycler: Cycler | undefined;
  const replicas: LockClient[] = [];
  let holding: unknown;
  const send = (reply: Reply): void => void process.send!(reply);
  const opened = (): Cycler => {
    if (!cycler) throw new Error('not opened');
    return cycler;
  };
  const withAdmin = async <T>(use: (admin: Redis) => Promise<T>): Promise<T> => {
    const admin = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      return await use(admin);
    } finally {
      admin.disconnect();
    }
  };

  const handlers: { [K in keyof Requests]: (args: Requests[K][0]) => Promise<Requests[K][1]> } = {
    open: async () => {
      cycler = await contender.open(url);
    },
    latency: ({ key, ops }) => timeCycles(opened(), key, ops, redisPid),
    warmup: async ({ key, ops }) => {
      for (let i = 0; i < ops; i++) await opened().cycle(key);
    },
    throughput: ({ keyPrefix, ops, workers }) => throughput(opened(), keyPrefix, ops, workers),
    openReplicas: async ({ count }) => {
      if (!contender.lockClient) throw new Error(`${id} cannot hold a lock outside a callback`);
      for (let i = 0; i < count; i++) replicas.push(await contender.lockClient(url));
    },
    race: ({ key, rounds }) => contention(replicas, key, rounds),
    memory: async ({ count, concurrency }) => {
      if (!contender.lockClient) throw new Error(`${id} cannot hold a lock outside a callback`);
      const client = await contender.lockClient(url);
      try {
        return await withAdmin((admin) => heldLocksMemory(client, admin, 'held', count, concurrency));
      } finally {
        await client.close();
      }
    },
    // A fresh instance of the contender (a decorator one), on an emptied database.
    heap: ({ calls, concurrency, slices }) =>
      withAdmin(async (admin) => {
        await admin.flushall();
        return decoratorHeap(await contender.open(url), admin, calls, concurrency, slices, (done, heapMB) =>
          send({ seq: 0, progress: `${done} calls, heap after GC ${heapMB.toFixed(2)} MB` }),
        );
      }),
    cycle: async ({ key }) => opened().cycle(key),
    scheduled: async ({ key }) => {
      const { scheduled } = opened();
      if (!scheduled) throw new Error(`${id} has no @Cron method`);
      return scheduled(key);
    },
    telemetrySeen: async () => opened().telemetrySeen?.(),
    // A lost race, for MONITOR: replica 0 holds the key, replica 1 tries it once.
    hold: async ({ key }) => {
      holding = await replicas[0].tryAcquire(key);
      if (holding === undefined) throw new Error(`${id} could not take the free lock ${key}`);
    },
    tryHeld: async ({ key }) => (await replicas[1].tryAcquire(key)) !== undefined,
    unhold: async () => replicas[0].release(holding),
    cold: async ({ key }) => {
      const fresh = await contender.open(url);
      await fresh.cycle(key);
      await fresh.close();
    },
    close: async () => {
      await cycler?.close();
      await Promise.all(replicas.map((replica) => replica.close()));
      setImmediate(() => process.exit(0));
    },
  };

  process.on('message', (request: Request) => {
    const handler = handlers[request.type] as (args: unknown) => Promise<unknown>;
    handler(request.args).then(
      (result) => send({ seq: request.seq, result }),
      (error: unknown) =>
        send({ seq: request.seq, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
}

if (require.main === module) {
  const [id, url, redisPid] = process.argv.slice(2);
  serve(id, url, Number(redisPid)).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
