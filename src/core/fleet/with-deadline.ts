import { DistributedLockError } from '../errors';
import { raceDeadline } from '../waits';

/** What ioredis says of a command sent while its connection is down (offline queue off, as the library's). */
const NOT_CONNECTED = /^(Stream isn't writeable|Connection is closed)/;

/** Words ioredis's refusal of a command on a connection that is down as the library's error. */
function unreachable(error: unknown): never {
  if (error instanceof Error && NOT_CONNECTED.test(error.message)) {
    throw new DistributedLockError(`Redis is not reachable (${error.message}); try again once it is`);
  }
  throw error;
}

/**
 * `target` with every method that returns a promise bounded by `deadlineMs`: past it, the call
 * rejects with a `DistributedLockError` saying `Redis did not answer within <deadlineMs> ms`, instead of
 * waiting on a Redis that hangs; on a connection that is down, it rejects at once saying so.
 * Methods named in `ownBound` wait as long as they say (a trigger's `timeoutMs`).
 */
export function withDeadline<T extends object>(target: T, deadlineMs: number, ownBound: readonly string[] = []): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = value.apply(object, args);
        if (!(result instanceof Promise)) return result;
        if (ownBound.includes(String(property))) return result.catch(unreachable);
        return raceDeadline(result.catch(unreachable), deadlineMs, () => {
          throw new DistributedLockError(`Redis did not answer within ${deadlineMs} ms`);
        });
      };
    },
  });
}
