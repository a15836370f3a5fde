import { Injectable } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { DistributedLock } from 'dpa-distributed-lock-cron';
import { replicaName, report } from './replica-messages';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

@Injectable()
export class EverySecondJob {
  /** Every replica schedules this each second; the lock lets one of them run each tick. */
  @Cron(CronExpression.EVERY_SECOND)
  @DistributedLock('demo:every-second', 5000)
  async run(): Promise<void> {
    const startedAt = Date.now();
    await sleep(200 + Math.random() * 200); // stands in for real work: 200–400 ms
    report({
      type: 'run',
      replica: replicaName(),
      // Crons fire a few ms after the second they are scheduled for: the nearest second names the tick.
      tick: Math.round(startedAt / 1000) * 1000,
      startedAt,
      endedAt: Date.now(),
    });
  }
}
