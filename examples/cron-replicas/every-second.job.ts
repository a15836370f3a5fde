import { Injectable } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { DistributedLock } from 'dpa-distributed-lock-cron';
import { runDemoJob } from './replica-messages';

@Injectable()
export class EverySecondJob {
  /** Every replica schedules this each second; the lock lets one of them run each tick. */
  @Cron(CronExpression.EVERY_SECOND)
  @DistributedLock('demo:every-second', 5000)
  async run(): Promise<void> {
    await runDemoJob();
  }
}
