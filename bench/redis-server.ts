import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A private redis-server for one bench run, on a free loopback port; killed by PID when done. */
export interface BenchRedis {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  readonly version: string;
  /** A new connection, for measurements and markers (closed by `stop`). */
  client(): Redis;
  stop(): Promise<void>;
}

const started = new Set<ChildProcess>();
// A crashed or interrupted run must not leave its server behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
process.once('exit', () => {
  for (const child of started) {
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

function freePort(): Promise<number> {
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

export async function startBenchRedis(): Promise<BenchRedis> {
  const version = /v=(\S+)/.exec(execFileSync('redis-server', ['--version']).toString())?.[1] ?? 'unknown';
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      const child = await spawnServer(port);
      const clients: Redis[] = [];
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        pid: child.pid!,
        version,
        client() {
          const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
          client.on('error', () => undefined);
          clients.push(client);
          return client;
        },
        async stop() {
          for (const client of clients.splice(0)) client.disconnect();
          const exited = new Promise((resolve) => child.once('exit', resolve));
          process.kill(child.pid!, 'SIGKILL');
          await exited;
        },
      };
    } catch (error) {
      lastError = error; // most likely the port was taken in between: try another
    }
  }
  throw lastError;
}

function spawnServer(port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = spawn('redis-server', [...args, '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  child.once('exit', () => started.delete(child));
  let output = '';
  return new Promise((resolve, reject) => {
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
        child.stdout!.removeAllListeners('data');
        child.stdout!.resume();
        child.removeAllListeners('exit');
        child.once('exit', () => started.delete(child));
        resolve(child);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => fail(new Error(`redis-server exited with ${code}:\n${output}`)));
  });
}

/**
 * Pins a process, all its threads included, to one CPU with `taskset`. False when that is not
 * possible (no taskset, one CPU): the bench then runs unpinned.
 */
export function pinToCpu(pid: number, cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A field of `INFO <section>` as a number. */
export async function infoNumber(client: Redis, section: string, field: string): Promise<number> {
  const info = await client.info(section);
  const match = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  if (!match) throw new Error(`INFO ${section} has no ${field}`);
  return Number(match[1]);
}
