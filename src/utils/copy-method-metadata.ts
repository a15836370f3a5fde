/**
 * Moves the Reflect metadata and the name of a replaced method onto its wrapper. `@Cron`,
 * `@Interval` and `@Timeout` keep their settings on the method function itself, so a wrapper
 * without them would silently unschedule the job.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export function copyMethodMetadata(from: Function, to: Function): void {
  for (const key of Reflect.getOwnMetadataKeys(from)) {
    Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, from), to);
  }
  Object.defineProperty(to, 'name', { value: from.name, configurable: true });
}
