import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { DistributedLock, DistributedLockModule, type LockEvent } from '../../src';
import { LockEvents } from '../../src/core/events/lock-events';
import { createReplica } from '../support/create-replica';
import { startTestRedis, type TestRedis } from '../support/redis-server';

@Injectable()
class ExportJobs {
  @DistributedLock('export', 10_000)
  export(): string {
    return 'exported';
  }
}

@Injectable()
class LockEventLog {
  readonly seen: LockEvent[] = [];

  @OnEvent('distributed-lock.*')
  record(event: LockEvent): void {
    this.seen.push(event);
  }
}

describe('lock events through @nestjs/event-emitter', () => {
  let redis: TestRedis;
  const apps: INestApplicationContext[] = [];
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    jest.restoreAllMocks();
  });
  afterAll(async () => {
    await redis.dispose();
  });

  it('emits every lock event as distributed-lock.<type> in an app that imports EventEmitterModule', async () => {
    const app = await createReplica(
      [EventEmitterModule.forRoot({ wildcard: true }), DistributedLockModule.forRoot({ url: redis.url })],
      [ExportJobs, LockEventLog],
    );
    apps.push(app);
    await expect(app.get(ExportJobs).export()).resolves.toBe('exported');
    expect(app.get(LockEventLog).seen).toEqual([
      expect.objectContaining({ type: 'acquired', key: 'export', job: 'ExportJobs.export' }),
      expect.objectContaining({ type: 'ran', key: 'export', job: 'ExportJobs.export', outcome: 'ok' }),
    ]);
  });

  it('builds no event in an app without it', async () => {
    const emit = jest.spyOn(LockEvents.prototype, 'emit');
    const app = await createReplica([DistributedLockModule.forRoot({ url: redis.url })], [ExportJobs]);
    apps.push(app);
    await expect(app.get(ExportJobs).export()).resolves.toBe('exported');
    expect(emit).not.toHaveBeenCalled();
  });
});
