import { DistributedLock, InvalidLockArgumentError } from '../../src';

const defineJobClass = (decorator: () => MethodDecorator) => () => {
  class Jobs {
    @decorator()
    run(): void {}
  }
  return Jobs;
};

describe('@DistributedLock arguments, checked when the class is defined', () => {
  it.each([
    [
      '',
      1000,
      'key must be a non-empty string that does not start with "}" (in Redis Cluster the lock and its state would hash to different slots), got "".',
    ],
    [
      42,
      1000,
      'key must be a non-empty string that does not start with "}" (in Redis Cluster the lock and its state would hash to different slots), got 42.',
    ],
    [
      undefined,
      1000,
      'key must be a non-empty string that does not start with "}" (in Redis Cluster the lock and its state would hash to different slots), got undefined.',
    ],
    ['job', 0, 'ttlMs must be a positive integer number of milliseconds, at most 2147483647, got 0.'],
    ['job', -5, 'got -5.'],
    ['job', 1.5, 'got 1.5.'],
    ['job', NaN, 'got NaN.'],
    ['job', Infinity, 'got Infinity.'],
    ['job', 2 ** 31, 'got 2147483648.'],
    ['job', '1000', 'got "1000".'],
  ])('rejects key %j with TTL %j as a TypeError naming the value', (key, ttlMs, message) => {
    const define = defineJobClass(() => DistributedLock(key as string, ttlMs as number));
    expect(define).toThrow(TypeError);
    expect(define).toThrow(InvalidLockArgumentError);
    expect(define).toThrow(message);
  });

  it('accepts the options-object form and checks it the same way', () => {
    expect(defineJobClass(() => DistributedLock({ key: 'job', ttlMs: 1000 }))).not.toThrow();
    expect(defineJobClass(() => DistributedLock({ key: 'job', ttlMs: 0 }))).toThrow('ttlMs must be');
  });

  it.each([
    [{ minHoldMs: -1 }, 'minHoldMs must be a non-negative integer number of milliseconds, at most 2147483647, got -1.'],
    [{ autoExtend: 'yes' }, 'autoExtend must be true or false, got "yes".'],
    [{ fencing: 1 }, 'fencing must be true or false, got 1.'],
  ])('rejects the option %j, naming it and its value', (option, message) => {
    expect(defineJobClass(() => DistributedLock({ key: 'job', ttlMs: 1000, ...(option as object) }))).toThrow(message);
  });

  it('accepts the largest TTL a timer can hold', () => {
    expect(defineJobClass(() => DistributedLock('job', 2 ** 31 - 1))).not.toThrow();
  });

  it('rejects a second argument next to an options object', () => {
    expect(
      defineJobClass(() =>
        (DistributedLock as (a: unknown, b: unknown) => MethodDecorator)({ key: 'job', ttlMs: 1 }, 5),
      ),
    ).toThrow('second argument of @DistributedLock(options)');
  });
});
