import {
  type DynamicModule,
  type INestApplicationContext,
  type LoggerService,
  Module,
  type Provider,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

type Import = Type | DynamicModule | Promise<DynamicModule>;

/** Records what Nest and the library log, by level, so tests can assert on log lines. */
export class RecordingLogger implements LoggerService {
  readonly lines: { level: string; message: string; context?: string }[] = [];
  log(message: string, context?: string): void {
    this.lines.push({ level: 'log', message, context });
  }
  warn(message: string, context?: string): void {
    this.lines.push({ level: 'warn', message, context });
  }
  /** Nest calls `error(message, stack?, context?)`: the context is the last argument. */
  error(message: string, ...rest: (string | undefined)[]): void {
    this.lines.push({ level: 'error', message, context: rest[rest.length - 1] });
  }
  debug(message: string, context?: string): void {
    this.lines.push({ level: 'debug', message, context });
  }
  verbose(message: string, context?: string): void {
    this.lines.push({ level: 'verbose', message, context });
  }
  /** Every message logged at `level`: use it for a logger given to the module as its `logger` option. */
  messages(level: string): string[] {
    return this.lines.filter((line) => line.level === level).map((line) => line.message);
  }

  /**
   * Messages at `level` the library logged through Nest's logger (context DistributedLock). Nest's
   * app logger is process-wide: with several apps in one process, the last app's logger gets them all.
   */
  lockMessages(level: string): string[] {
    return this.lines
      .filter((line) => line.level === level && line.context === 'DistributedLock')
      .map((line) => line.message);
  }
}

/**
 * Boots one replica: a standalone Nest application context over `imports` and `providers`,
 * as `NestFactory` boots a real app (lifecycle hooks included). Close it with `app.close()`.
 */
export async function createReplica(
  imports: Import[],
  providers: Provider[] = [],
  logger: LoggerService | false = false,
): Promise<INestApplicationContext> {
  @Module({ imports, providers })
  class ReplicaModule {}
  return NestFactory.createApplicationContext(ReplicaModule, { logger, abortOnError: false });
}

/** The token under which `createNamedReplicas` provides each replica's name. */
export const REPLICA = 'REPLICA';

/**
 * Boots one replica per name, each with `DistributedLockModule`-style `imports(name)` and
 * `providers`, and its name provided as `REPLICA` (inject it with `@Inject(REPLICA)`).
 */
export function createNamedReplicas(
  names: readonly string[],
  imports: (name: string) => Import[],
  providers: Provider[],
): Promise<INestApplicationContext[]> {
  return Promise.all(
    names.map((name) => createReplica(imports(name), [...providers, { provide: REPLICA, useValue: name }])),
  );
}
