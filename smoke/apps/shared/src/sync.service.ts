import { Injectable } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { DistributedLock, DistributedLockService } from 'dpa-distributed-lock-cron';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The quick start's jobs; each run is recorded with its wall-clock time so main.ts can count them. */
@Injectable()
export class SyncService {
  dailyRuns = 0;
  readonly everySecondRuns: Record<'above' | 'below', number[]> = { above: [], below: [] };

  constructor(private readonly lockService: DistributedLockService) {}

  @Cron(CronExpression.EVERY_DAY_AT_6AM, { name: 'daily-sync' })
  @DistributedLock('cron:daily-sync', 300000) // key, TTL 5 minutes
  async dailySync(): Promise<string> {
    this.dailyRuns++;
    await sleep(50);
    return 'synced';
  }

  @DistributedLock('cron:every-second-above', 5000)
  @Cron(CronExpression.EVERY_SECOND, { name: 'every-second-above' })
  async everySecondAbove(): Promise<void> {
    this.everySecondRuns.above.push(Date.now());
  }

  @Cron(CronExpression.EVERY_SECOND, { name: 'every-second-below' })
  @DistributedLock('cron:every-second-below', 5000)
  async everySecondBelow(): Promise<void> {
    this.everySecondRuns.below.push(Date.now());
  }

  acquireLock(key: string, ttlMs: number): Promise<boolean> {
    return this.lockService.acquireLock(key, ttlMs);
  }

  releaseLock(key: string): Promise<void> {
    return this.lockService.releaseLock(key);
  }

  isConnected(): boolean {
    return this.lockService.isConnected();
  }

  /** The value stored under `key`'s lock (its holder's token), or null when no one holds it. */
  async storedToken(key: string): Promise<string | null> {
    return this.lockService.client.get(`lock:{${key}}`);
  }
}
