import { clearTimeout, setImmediate, setTimeout } from './clock';

/**
 * Settles as `promise` does, or as `onExpiry` does once `ms` have passed first: with its value,
 * or rejecting with what it throws. The timer is cleared either way, so nothing outlives the wait.
 * With `afterPendingIo`, the expiry waits one turn more, for replies already read from sockets:
 * after a stall (a GC pause, SIGSTOP) Node runs due timers before it reads them.
 */
export function raceDeadline<T, U>(
  promise: Promise<T>,
  ms: number,
  onExpiry: () => U,
  options: { afterPendingIo?: boolean } = {},
): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<U>((resolve, reject) => {
    const expire = (): void => {
      try {
        resolve(onExpiry());
      } catch (error) {
        reject(error);
      }
    };
    timer = setTimeout(options.afterPendingIo ? () => setImmediate(expire) : expire, Math.max(1, ms));
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Resolves after `ms`, or as soon as `wakeOn` aborts; rejects with `cancelOn`'s reason as soon as
 * it aborts. Its timer and listeners are gone once it settles.
 */
export function sleep(ms: number, signals: { cancelOn?: AbortSignal; wakeOn?: AbortSignal } = {}): Promise<void> {
  const { cancelOn, wakeOn } = signals;
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      cancelOn?.removeEventListener('abort', onCancel);
      wakeOn?.removeEventListener('abort', done);
      resolve();
    };
    const onCancel = (): void => {
      done();
      reject(cancelOn!.reason);
    };
    const timer = setTimeout(done, ms);
    cancelOn?.addEventListener('abort', onCancel, { once: true });
    wakeOn?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The pause before retry number `retry` (from 0): `firstMs` doubling per retry up to `maxMs`, with
 * equal jitter (half fixed, half random), so contenders that collided once do not retry in lockstep.
 */
export function backoffDelay(retry: number, firstMs: number, maxMs: number): number {
  const capped = Math.min(maxMs, firstMs * 2 ** Math.min(retry, 30));
  return capped / 2 + Math.random() * (capped / 2);
}
