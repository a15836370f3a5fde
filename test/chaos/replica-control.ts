import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { monoMs } from './execution-log';

/**
 * Requests from the fault driver to a replica: the driver writes one to the replica's control
 * file (CHAOS_CONTROL_FILE) and sends SIGUSR2; the replica reads it and logs a record with the
 * same `id` once applied. SIGUSR2 is free: the replica's shutdown hooks listen to SIGTERM only,
 * and node itself uses SIGUSR1 (the inspector).
 *
 * - `stretch`: executions under way run at least `runMs` from their start, so a SIGTERM aimed at
 *   one finds it in flight for longer than the lock's TTL (answered by a `stretch` record).
 * - `block`: at `leadMs` before the next multiple of `everyMs` by the replica's clock (at least
 *   `MIN_NOTICE_MS` away), busy-wait `blockMs` on the event loop, so the cron timers due at that
 *   occurrence fire late (answered by a `block` record, written when the block ends).
 */
export type ControlRequest =
  | { id: number; kind: 'stretch'; runMs: number }
  | { id: number; kind: 'block'; everyMs: number; leadMs: number; blockMs: number };

/** The least time between a block request and the block, so the replica's timer is set in time. */
export const MIN_NOTICE_MS = 400;

/** Writes the request whole (write, then rename) and signals the replica. */
export function sendControl(pid: number, controlFile: string, request: ControlRequest): void {
  const pending = `${controlFile}.${request.id}`;
  writeFileSync(pending, JSON.stringify(request));
  renameSync(pending, controlFile);
  process.kill(pid, 'SIGUSR2');
}

/** Calls `apply` with each request the driver sends to this process. */
export function listenForControl(controlFile: string, apply: (request: ControlRequest) => void): void {
  process.on('SIGUSR2', () => apply(JSON.parse(readFileSync(controlFile, 'utf8')) as ControlRequest));
}

/** The wall time of the occurrence a block request straddles: the next multiple of `everyMs` with enough notice. */
export function nextOccurrence(nowMs: number, everyMs: number, leadMs: number): number {
  return Math.ceil((nowMs + leadMs + MIN_NOTICE_MS) / everyMs) * everyMs;
}

/** Keeps the event loop (and so every timer of the process) busy for `ms`. */
export function busyWait(ms: number): void {
  const until = monoMs() + ms;
  while (monoMs() < until) {
    // spin: the point is that nothing else in this process runs
  }
}
