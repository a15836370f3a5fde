import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import Redis from 'ioredis';

/**
 * A Redis for one test suite. By default a private `redis-server` on a free loopback port, which
 * the suite may stop, restart and pause. `REDIS_URL` points the suites at an existing server
 * instead (tests that stop or pause it are skipped); with no `redis-server` binary, a
 * testcontainers container is tried, when testcontainers is installed and Docker is reachable.
 */
export interface TestRedis {
  readonly host: string;
  readonly port: number;
  /** `redis://host:port` (no credentials; add them in the test when it sets a password). */
  readonly url: string;
  /** False for an external or container Redis: stop/start/pause are then unavailable. */
  readonly controllable: boolean;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills the server without warning (SIGKILL). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
  /** A new client for assertions; closed by `dispose()`. */
  client(db?: number): Redis;
  /** Stops the server and closes every client made by `client()`. */
  dispose(): Promise<void>;
}

/** Whether the suites can stop and pause their Redis (true unless `REDIS_URL` is set). */
export const CAN_CONTROL_REDIS = !process.env.REDIS_URL && hasRedisBinary();

/** Starts a Redis for a suite. `args` are extra redis-server arguments, e.g. `['--requirepass', 's3cret']`. */
export async function startTestRedis(args: string[] = []): Promise<TestRedis> {
  if (process.env.REDIS_URL) return externalRedis(process.env.REDIS_URL);
  if (hasRedisBinary()) return startLocalRedisServer(args);
  return containerRedis(args);
}

function hasRedisBinary(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Asks the OS for a free port, then lets it go for redis-server to take. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const running = new Set<ChildProcess>();
// A crashed test run must not leave processes behind: kill what this process started, by PID.
process.once('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid!, 'SIGCONT'); // a stopped process cannot act on anything else
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** Kills `child` by PID if this test process exits while it still runs. */
export function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

abstract class ClientTracker {
  private readonly clients: Redis[] = [];
  abstract readonly url: string;

  client(db = 0): Redis {
    const client = new Redis(`${this.url}/${db}`, { maxRetriesPerRequest: 1, lazyConnect: false });
    client.on('error', () => undefined);
    this.clients.push(client);
    return client;
  }

  protected closeClients(): void {
    for (const client of this.clients.splice(0)) client.disconnect();
  }
}

/**
 * Starts a private `redis-server` on a free loopback port, whatever `REDIS_URL` says (the
 * benchmarks need their own server). `args` are extra redis-server arguments.
 */
export function startLocalRedisServer(args: string[] = []): Promise<LocalRedisServer> {
  return LocalRedisServer.start(args);
}

export class LocalRedisServer extends ClientTracker implements TestRedis {
  readonly host = '127.0.0.1';
  readonly controllable = true;
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly args: string[],
  ) {
    super();
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  /** The server's PID while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  static async start(args: string[]): Promise<LocalRedisServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new LocalRedisServer(await freePort(), args);
      try {
        await server.start();
        return server;
      } catch (error) {
        lastError = error; // most likely the port was taken in between; try another
      }
    }
    throw lastError;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error(`redis-server on port ${this.port} is already running`);
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        this.host,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        ...this.args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    killOnExit(child);
    this.child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`redis-server did not start in 10 s:\n${output}`)), 10_000);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(error);
      };
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', (code) => {
        if (this.child === child) this.child = undefined;
        fail(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
    child.stdout!.resume();
  }

  stop(): Promise<void> {
    return this.terminate('SIGTERM');
  }

  kill(): Promise<void> {
    return this.terminate('SIGKILL');
  }

  pause(): void {
    this.signal('SIGSTOP');
  }

  resume(): void {
    this.signal('SIGCONT');
  }

  async dispose(): Promise<void> {
    this.closeClients();
    await this.kill();
  }

  private signal(signal: NodeJS.Signals): void {
    if (!this.child) throw new Error(`redis-server on port ${this.port} is not running`);
    this.child.kill(signal);
  }

  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    child.kill(signal);
    await exited;
  }
}

function externalRedis(url: string): TestRedis {
  const parsed = new URL(url);
  const unsupported = (): never => {
    throw new Error('The Redis at REDIS_URL is not started by the tests, so it cannot be stopped or paused.');
  };
  return new (class extends ClientTracker implements TestRedis {
    readonly host = parsed.hostname;
    readonly port = Number(parsed.port || 6379);
    readonly url = `${parsed.protocol}//${parsed.host}`;
    readonly controllable = false;
    stop = unsupported;
    kill = unsupported;
    start = unsupported;
    pause = unsupported;
    resume = unsupported;
    async dispose(): Promise<void> {
      this.closeClients();
    }
  })();
}

/** The part of testcontainers used here. It is not a dev dependency: `npm install --no-save testcontainers`. */
interface Testcontainers {
  GenericContainer: new (image: string) => {
    withExposedPorts(...ports: number[]): InstanceType<Testcontainers['GenericContainer']>;
    withCommand(command: string[]): InstanceType<Testcontainers['GenericContainer']>;
    start(): Promise<{ getHost(): string; getMappedPort(port: number): number; stop(): Promise<unknown> }>;
  };
}

async function containerRedis(args: string[]): Promise<TestRedis> {
  let testcontainers: Testcontainers;
  try {
    // A variable specifier, so the type-check does not need the package installed.
    const specifier = 'testcontainers';
    testcontainers = (await import(specifier)) as Testcontainers;
  } catch {
    throw new Error(
      'No redis-server binary found and testcontainers is not installed: install redis-server (apt-get install redis-server) or set REDIS_URL.',
    );
  }
  const container = await new testcontainers.GenericContainer('redis:7-alpine')
    .withExposedPorts(6379)
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no', ...args])
    .start();
  const unsupported = (): never => {
    throw new Error('A container Redis cannot be stopped or paused by these tests.');
  };
  return new (class extends ClientTracker implements TestRedis {
    readonly host = container.getHost();
    readonly port = container.getMappedPort(6379);
    readonly url = `redis://${this.host}:${this.port}`;
    readonly controllable = false;
    stop = unsupported;
    kill = unsupported;
    start = unsupported;
    pause = unsupported;
    resume = unsupported;
    async dispose(): Promise<void> {
      this.closeClients();
      await container.stop();
    }
  })();
}
