import { type INestApplication, Module, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { DistributedLockModule, type DistributedLockOptions } from '../../src';
import { DistributedLockDashboardModule, type DistributedLockDashboardOptions } from '../../src/dashboard';

/** A running app with the dashboard mounted, as a user builds one. */
export interface DashboardApp {
  readonly nest: INestApplication;
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  close(): Promise<void>;
}

/** Boots an Express or Fastify app with the lock module, the dashboard and `providers`, on a free loopback port. */
export async function startDashboardApp(
  platform: 'express' | 'fastify',
  lock: DistributedLockOptions,
  dashboard: DistributedLockDashboardOptions,
  providers: Provider[] = [],
): Promise<DashboardApp> {
  @Module({
    imports: [
      DistributedLockModule.forRoot({ logger: false, ...lock }),
      DistributedLockDashboardModule.forRoot(dashboard),
    ],
    providers,
  })
  class AppModule {}

  const nest =
    platform === 'fastify'
      ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false })
      : await NestFactory.create(AppModule, { logger: false });
  await nest.listen(0, '127.0.0.1');
  const { port } = nest.getHttpServer().address() as AddressInfo;
  return { nest, origin: `http://127.0.0.1:${port}`, close: () => nest.close() };
}
