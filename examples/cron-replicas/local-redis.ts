import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A `redis-server` started by the demo on a free loopback port. */
export interface LocalRedis {
  readonly host: string;
  readonly port: number;
  readonly process: ChildProcess;
}

/**
 * Starts `redis-server` on a free port of 127.0.0.1, without persistence; retries if the port gets
 * taken. `onSpawn` sees each process as soon as it exists, so the caller can stop it whatever happens.
 */
export async function startLocalRedis(onSpawn: (child: ChildProcess) => void): Promise<LocalRedis> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startOn(await freePort(), onSpawn);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(
          'redis-server is not on PATH. Install it (e.g. apt-get install redis-server), ' +
            'or set REDIS_URL or REDIS_HOST (+ REDIS_PORT) to use a running Redis.',
        );
      }
      lastError = error; // most likely the port was taken in between; try another
    }
  }
  throw lastError;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function startOn(port: number, onSpawn: (child: ChildProcess) => void): Promise<LocalRedis> {
  const host = '127.0.0.1';
  const args = ['--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no'];
  // Its own process group: Ctrl-C reaches the launcher only, which stops the replicas before Redis.
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  onSpawn(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      clearTimeout(timer);
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`redis-server did not start in 10 s:\n${output}`)), 10_000);
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`redis-server exited with code ${code}:\n${output}`)));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      child.stdout!.removeAllListeners('data');
      child.stdout!.resume();
      resolve({ host, port, process: child });
    });
  });
}
