import { clearTimeout, setTimeout } from '../clock';
import { DistributedLockError } from '../errors';

/**
 * `target` with every method that returns a promise bounded by `deadlineMs`: past it, the call
 * rejects with a `DistributedLockError` saying `Redis did not answer within <deadlineMs> ms`, instead of
 * waiting on a Redis that hangs.
 */
export function withDeadline<T extends object>(target: T, deadlineMs: number): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = value.apply(object, args);
        if (!(result instanceof Promise)) return result;
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new DistributedLockError(`Redis did not answer within ${deadlineMs} ms`)),
            deadlineMs,
          );
        });
        return Promise.race([result, expired]).finally(() => clearTimeout(timer));
      };
    },
  });
}
