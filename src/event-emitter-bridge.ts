import type { ModuleRef } from '@nestjs/core';
import type { LockEvent } from './core/events/lock-events';

/** What `@nestjs/event-emitter` calls each lock event: `distributed-lock.<type>`, e.g. `distributed-lock.skipped`. */
export const LOCK_EVENT_NAMESPACE = 'distributed-lock';

interface Emitter {
  emit(name: string, payload: LockEvent): unknown;
}

/**
 * The application's `EventEmitter2` when it imports `EventEmitterModule`, else undefined. The
 * package is an optional peer, loaded only here; a copy that cannot be loaded (missing, or an
 * ESM-only major under a CommonJS test runner) means no bridge.
 */
export function applicationEventEmitter(moduleRef: ModuleRef): Emitter | undefined {
  let token: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    token = (require('@nestjs/event-emitter') as { EventEmitter2?: unknown }).EventEmitter2;
  } catch {
    return undefined;
  }
  if (typeof token !== 'function') return undefined;
  try {
    return moduleRef.get(token as new () => Emitter, { strict: false });
  } catch {
    return undefined; // the app does not import EventEmitterModule
  }
}

/** Emits each lock event on `emitter` under `distributed-lock.<type>`. */
export function forwardTo(emitter: Emitter): (event: LockEvent) => void {
  return (event) => emitter.emit(`${LOCK_EVENT_NAMESPACE}.${event.type}`, event);
}
