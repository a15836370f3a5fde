/** Where the library writes. Nest's `Logger` fits; so does `console`. */
export interface LockLogger {
  verbose?(message: string): void;
  debug?(message: string): void;
  log?(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Logs an informational line: at `log` level when the logger has one, else as a warning. */
export function logInfo(logger: LockLogger, message: string): void {
  if (logger.log) logger.log(message);
  else logger.warn(message);
}

/** What `logger: false` gives: only what cannot be said otherwise is dropped. */
export const silentLogger: LockLogger = { warn() {}, error() {} };

/** The default outside Nest: the console, each line marked with the package's name. */
export const consoleLogger: LockLogger = {
  log: (message) => console.log(`[dpa-distributed-lock-cron] ${message}`),
  warn: (message) => console.warn(`[dpa-distributed-lock-cron] ${message}`),
  error: (message) => console.error(`[dpa-distributed-lock-cron] ${message}`),
};
