import type { EngineClock } from './clock';

/** Largest delay Node timers (and so TTL-driven timers) accept: 2^31-1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A rule a setting or argument must follow, phrased to complete "must be …". */
export interface Expectation<T> {
  readonly expected: string;
  test(value: unknown): value is T;
}

export const expectations = {
  positiveMs: {
    expected: `a positive integer number of milliseconds, at most ${MAX_TIMER_MS}`,
    test: (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= MAX_TIMER_MS,
  },
  nonNegativeMs: {
    expected: `a non-negative integer number of milliseconds, at most ${MAX_TIMER_MS}`,
    test: (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_TIMER_MS,
  },
  positiveInteger: {
    expected: 'a positive integer number of milliseconds',
    test: (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0,
  },
  positiveCount: {
    expected: 'a positive integer',
    test: (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0,
  },
  count: {
    expected: 'a non-negative integer',
    test: (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0,
  },
  port: {
    expected: 'an integer from 1 to 65535',
    test: (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535,
  },
  db: {
    expected: 'a non-negative integer (a Redis logical database index)',
    test: (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0,
  },
  nonEmptyString: {
    expected: 'a non-empty string',
    test: (v: unknown): v is string => typeof v === 'string' && v.length > 0,
  },
  lockName: {
    expected:
      'a non-empty string that does not start with "}" (in Redis Cluster the lock and its state would hash to different slots)',
    test: (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.charCodeAt(0) !== 125,
  },
  keyPrefix: {
    expected:
      'a string whose first "{" is not followed at once by "}" (an empty hash tag would hash the lock and its state to different Redis Cluster slots)',
    test: (v: unknown): v is string => typeof v === 'string' && !/^[^{]*\{\}/.test(v),
  },
  string: {
    expected: 'a string',
    test: (v: unknown): v is string => typeof v === 'string',
  },
  boolean: {
    expected: 'true or false',
    test: (v: unknown): v is boolean => typeof v === 'boolean',
  },
  listener: {
    expected: 'a function',
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    test: (v: unknown): v is (event: any) => void => typeof v === 'function',
  },
  clock: {
    expected: 'an object with now(), setTimeout() and clearTimeout() methods',
    test: (v: unknown): v is EngineClock =>
      typeof v === 'object' &&
      v !== null &&
      ['now', 'setTimeout', 'clearTimeout'].every(
        (method) => typeof (v as Record<string, unknown>)[method] === 'function',
      ),
  },
  skipLogLevel: {
    expected: '"verbose", "debug", "log" or false',
    test: (v: unknown): v is 'verbose' | 'debug' | 'log' | false =>
      v === 'verbose' || v === 'debug' || v === 'log' || v === false,
  },
  failMode: {
    expected: '"open" or "closed"',
    test: (v: unknown): v is 'open' | 'closed' => v === 'open' || v === 'closed',
  },
} satisfies Record<string, Expectation<unknown>>;

/** Stands for the value of a setting that may hold a password, in an error and its message. */
export const HIDDEN_VALUE: unique symbol = Symbol('a value not shown (it may hold a password)');

/** Renders a bad value for an error message: exact for primitives, a type name otherwise. */
export function describeValue(value: unknown): string {
  if (value === HIDDEN_VALUE) return 'a value not shown (it may hold a password)';
  // A long string is cut: an error names the mistake, it does not reprint a document.
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (Array.isArray(value)) return 'an array';
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}

/**
 * Hides the credentials of a redis:// URL, well-formed or not, so it can be logged or put in an
 * error: everything between the scheme and the last "@" (a password may hold "/", ":" or "@"),
 * keeping a user name that stands alone before a ":".
 */
export function redactUrl(url: string): string {
  const credentials = urlCredentials(url);
  if (!credentials) return url;
  const { start, end, auth } = credentials;
  const colon = auth.indexOf(':');
  const user = colon > 0 && !/[/@]/.test(auth.slice(0, colon)) ? `${auth.slice(0, colon)}:` : '';
  return `${url.slice(0, start)}${user}***${url.slice(end)}`;
}

/**
 * Where a redis:// URL's credentials stand, well-formed or not: from after the scheme to the last
 * "@" (a password may hold "/", ":" or "@"); undefined for a URL without any.
 */
export function urlCredentials(url: string): { start: number; end: number; auth: string } | undefined {
  const schemeEnd = url.indexOf('://');
  const start = schemeEnd === -1 ? 0 : schemeEnd + 3;
  const end = url.lastIndexOf('@');
  return end < start ? undefined : { start, end, auth: url.slice(start, end) };
}
