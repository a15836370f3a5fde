import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { DistributedLockHealthIndicator } from '../../src/health';
import { DistributedLockTestingModule, InMemoryLockStore } from '../../src/testing';

// An app's own tests swap DistributedLockModule for the testing module: its health check still works.
describe('DistributedLockHealthIndicator over DistributedLockTestingModule', () => {
  it('reports the in-memory store up, and down during a simulated outage; no fleet records to check', async () => {
    const store = new InMemoryLockStore();
    const moduleRef = await Test.createTestingModule({
      imports: [TerminusModule, DistributedLockTestingModule.forRoot({ store })],
      providers: [DistributedLockHealthIndicator],
    }).compile();
    await moduleRef.init();
    const indicator = moduleRef.get(DistributedLockHealthIndicator);
    try {
      expect(await indicator.isHealthy()).toEqual({
        distributedLock: {
          status: 'up',
          servers: [{ server: 'in-memory lock store', latencyMs: 0, clockOffsetMs: 0 }],
          maxClockOffsetMs: 1000,
        },
      });

      store.simulateOutage();
      expect((await indicator.isHealthy('locks')).locks).toEqual({
        status: 'down',
        servers: [{ server: 'in-memory lock store', error: 'simulated outage' }],
        maxClockOffsetMs: 1000,
        message: 'Redis at in-memory lock store did not answer TIME: simulated outage.',
      });
    } finally {
      await moduleRef.close();
    }
  });

  it('refuses options it cannot use, naming them', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [TerminusModule, DistributedLockTestingModule.forRoot()],
      providers: [DistributedLockHealthIndicator],
    }).compile();
    const indicator = moduleRef.get(DistributedLockHealthIndicator);
    await expect(indicator.isHealthy('locks', { maxClockOffsetMs: -1 })).rejects.toThrow(
      'maxClockOffsetMs must be a non-negative number of milliseconds, got -1.',
    );
    await expect(indicator.isHealthy('locks', { overdueGraceMs: 1.5 })).rejects.toThrow(/^overdueGraceMs must be/);
    await moduleRef.close();
  });
});
