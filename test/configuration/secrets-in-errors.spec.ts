import { DistributedLockConfigError, lockOptionsFromEnvironment } from '../../src';
import { resolveLockOptions } from '../../src/core/options/resolve-options';

/** The error a configuration throws, for inspection. */
function errorOf(configure: () => unknown): DistributedLockConfigError {
  try {
    configure();
  } catch (error) {
    if (error instanceof DistributedLockConfigError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

/** Every run of 3 or more characters of `secret`: none may appear in a message. */
function piecesOf(secret: string): string[] {
  const pieces: string[] = [];
  for (let start = 0; start + 3 <= secret.length; start++) pieces.push(secret.slice(start, start + 3));
  return pieces;
}

function expectHidden(error: DistributedLockConfigError, secret: string): void {
  const shown = `${error.message}\n${String(error.value)}\n${JSON.stringify(error.value) ?? ''}`;
  for (const piece of piecesOf(secret)) expect(shown).not.toContain(piece);
}

describe('secrets never appear in configuration errors', () => {
  it.each([
    ['a "/" in the password', 'redis://admin:Xq/Zk9Wv@cache:6379', 'Xq/Zk9Wv'],
    ['an "@" in the password, and a bad database', 'redis://admin:Xq@Zk9Wv@cache:6379/x', 'Xq@Zk9Wv'],
    ['a password without a user, and a bad port', 'redis://:Xq7Zk9Wv@cache:port', 'Xq7Zk9Wv'],
    ['a password in a non-Redis URL', 'http://admin:Xq7Zk9Wv@cache:6379', 'Xq7Zk9Wv'],
  ])('REDIS_URL with %s', (_case, url, secret) => {
    const error = errorOf(() => lockOptionsFromEnvironment({ REDIS_URL: url }));
    expect(error.setting).toBe('REDIS_URL');
    expectHidden(error, secret);
  });

  it('REDIS_NODES entries, a comma in a password included', () => {
    const secret = 'Xq7Zk,9/Wv';
    const error = errorOf(() =>
      lockOptionsFromEnvironment({ REDIS_NODES: `redis://:${secret}@a:1/x,redis://b:2,redis://c:3` }),
    );
    expect(error.setting).toBe('REDIS_NODES[0].url');
    expectHidden(error, secret);
  });

  it.each([
    ['password', { password: 73916524 }, '73916524'],
    [
      'sentinelPassword',
      { sentinels: [{ host: 's', port: 26379 }], name: 'm', sentinelPassword: 73916524 },
      '73916524',
    ],
    ['nodes[1].password', { nodes: ['redis://a', { host: 'b', password: 73916524 }, 'redis://c'] }, '73916524'],
    ['url', { url: 73916524 }, '73916524'],
  ])('%s of the wrong type', (setting, options, secret) => {
    const error = errorOf(() => resolveLockOptions(options as never));
    expect(error.setting).toBe(setting);
    expectHidden(error, secret);
    expect(error.message).toMatch(/must be .*, got a value not shown \(it may hold a password\)\.$/);
  });

  it('still shows a malformed URL that holds no password, to help fix it', () => {
    expect(() => lockOptionsFromEnvironment({ REDIS_URL: 'mysql://db:3306' })).toThrow('got "mysql://db:3306"');
  });
});
