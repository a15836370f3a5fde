import {
  DistributedLock,
  DistributedLockConfigError,
  InvalidLockArgumentError,
  LockEngine,
  lockOptionsFromEnvironment,
} from '../../src';
import { resolveLockOptions } from '../../src/core/options/resolve-options';

/**
 * A lock and its state hash share the hash tag `{<key>}`. Two strings would empty that tag and
 * send them to different Redis Cluster slots: they are refused where they are written.
 */
describe('keys and prefixes that would split a lock from its state in Redis Cluster', () => {
  it.each(['{}', 'app{}:', 'app:{}{x}'])('refuses the keyPrefix %j, naming the option or variable', (keyPrefix) => {
    expect(() => resolveLockOptions({ keyPrefix })).toThrow(DistributedLockConfigError);
    expect(() => resolveLockOptions({ keyPrefix })).toThrow(/^keyPrefix must be a string whose first "\{"/);
    expect(() => lockOptionsFromEnvironment({ REDIS_KEY_PREFIX: keyPrefix })).toThrow(/^REDIS_KEY_PREFIX must be/);
  });

  it.each(['app{blue}:', 'app{', 'app}', 'x{a}{}'])('accepts the keyPrefix %j', (keyPrefix) => {
    expect(resolveLockOptions({ keyPrefix }).keyPrefix).toBe(keyPrefix);
  });

  it('refuses a key that starts with "}" in every method, before any Redis call', async () => {
    const engine = new LockEngine({ port: 1, logger: false, acquireTimeoutMs: 50 });
    try {
      await expect(engine.acquireLock('}x', 1_000)).rejects.toThrow(InvalidLockArgumentError);
      await expect(engine.withLock('}x', 1_000, () => 1)).rejects.toThrow(
        /key must be a non-empty string that does not start with "\}"/,
      );
      expect(() => engine.holdsLock('}x')).toThrow(InvalidLockArgumentError);
    } finally {
      await engine.close();
    }
  });

  it('refuses such a key on @DistributedLock while the class is being defined', () => {
    expect(() => DistributedLock('}nightly', 1_000)).toThrow(InvalidLockArgumentError);
  });
});
