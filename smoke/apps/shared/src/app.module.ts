import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { DistributedLockModule, distributedLockConfig } from 'dpa-distributed-lock-cron';
import { SyncService } from './sync.service.js';

// The README's quick start, as a user copies it: REDIS_HOST / REDIS_PORT through @nestjs/config.
@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, load: [distributedLockConfig] }),
    DistributedLockModule,
    ScheduleModule.forRoot(),
  ],
  providers: [SyncService],
})
export class AppModule {}
