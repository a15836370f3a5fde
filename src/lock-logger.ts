import { Logger } from '@nestjs/common';
import type { DistributedLockOptions } from './core/options/lock-options';
import type { LockLogger } from './core/logger';

/** Where the module logs: the `logger` option, else Nest's `Logger` under the context `DistributedLock`; none for `false`. */
export function moduleLogger(options: DistributedLockOptions): LockLogger | false {
  return options.logger ?? new Logger('DistributedLock');
}
