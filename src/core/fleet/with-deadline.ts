import { DistributedLockError } from '../errors';
import { raceDeadline } from '../waits';

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
        return raceDeadline(result, deadlineMs, () => {
          throw new DistributedLockError(`Redis did not answer within ${deadlineMs} ms`);
        });
      };
    },
  });
}
