import { execFileSync } from 'node:child_process';
import type { Redis } from 'ioredis';
import { startLocalRedisServer } from '../test/support/redis-server';

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

/** Starts the bench's server with the test suites' starter, which also kills it if the run dies. */
export async function startBenchRedis(): Promise<BenchRedis> {
  const version = /v=(\S+)/.exec(execFileSync('redis-server', ['--version']).toString())?.[1] ?? 'unknown';
  const server = await startLocalRedisServer();
  return {
    port: server.port,
    url: server.url,
    pid: server.pid!,
    version,
    client: () => server.client(),
    stop: () => server.dispose(),
  };
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
