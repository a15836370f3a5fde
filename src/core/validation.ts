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
  string: {
    expected: 'a string',
    test: (v: unknown): v is string => typeof v === 'string',
  },
  boolean: {
    expected: 'true or false',
    test: (v: unknown): v is boolean => typeof v === 'boolean',
  },
  failMode: {
    expected: '"open" or "closed"',
    test: (v: unknown): v is 'open' | 'closed' => v === 'open' || v === 'closed',
  },
} satisfies Record<string, Expectation<unknown>>;

/** Renders a bad value for an error message: exact for primitives, a type name otherwise. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (Array.isArray(value)) return 'an array';
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}

/** Hides the password of a redis:// URL so it can be logged or put in an error. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_match, scheme: string, auth: string) => {
    const user = auth.includes(':') ? auth.slice(0, auth.indexOf(':')) : '';
    return `${scheme}${user}:***@`;
  });
}
