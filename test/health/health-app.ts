import { Controller, Get, type INestApplication, Module, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { DistributedLockModule, type DistributedLockOptions } from '../../src';
import { DistributedLockHealthIndicator, type DistributedLockHealthOptions } from '../../src/health';

/** A running app with a /health endpoint. */
export interface HealthApp {
  readonly nest: INestApplication;
  /** GET /health, and how long the answer took. */
  get(): Promise<{ status: number; body: HealthBody; ms: number }>;
  close(): Promise<void>;
}

/** What Terminus answers on /health. */
export interface HealthBody {
  status: string;
  info?: Record<string, DistributedLockDetails>;
  error?: Record<string, DistributedLockDetails>;
}

export interface DistributedLockDetails {
  status: 'up' | 'down';
  servers: { server: string; latencyMs?: number; clockOffsetMs?: number; error?: string }[];
  maxClockOffsetMs: number;
  overdue?: { job: string; occurrence: string; lateMs: number }[];
  warning?: string;
  message?: string;
}

/**
 * A Nest HTTP app as a user builds one: TerminusModule, a /health controller checking
 * `isHealthy('distributedLock', check)`, the lock module; listening on a free loopback port.
 */
export async function startHealthApp(
  lock: DistributedLockOptions,
  check: DistributedLockHealthOptions = {},
  providers: Provider[] = [],
): Promise<HealthApp> {
  @Controller('health')
  class HealthController {
    constructor(
      private readonly health: HealthCheckService,
      private readonly distributedLock: DistributedLockHealthIndicator,
    ) {}

    @Get()
    @HealthCheck()
    check() {
      return this.health.check([() => this.distributedLock.isHealthy('distributedLock', check)]);
    }
  }

  @Module({
    imports: [TerminusModule, DistributedLockModule.forRoot({ logger: false, ...lock })],
    controllers: [HealthController],
    providers: [DistributedLockHealthIndicator, ...providers],
  })
  class AppModule {}

  const nest = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
  await nest.listen(0, '127.0.0.1');
  const { port } = nest.getHttpServer().address() as AddressInfo;
  return {
    nest,
    async get() {
      const started = performance.now();
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      const body = (await response.json()) as HealthBody;
      return { status: response.status, body, ms: performance.now() - started };
    },
    close: () => nest.close(),
  };
}
