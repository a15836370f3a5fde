import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { DistributedLockModule, distributedLockConfig } from 'dpa-distributed-lock-cron';
import { EverySecondJob } from './every-second.job';

/** The README's quick start: settings come from REDIS_HOST / REDIS_PORT (or REDIS_URL). */
@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] }),
    DistributedLockModule,
    ScheduleModule.forRoot(),
  ],
  providers: [EverySecondJob],
})
export class AppModule {}
