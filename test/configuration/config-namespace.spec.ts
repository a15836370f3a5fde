import { ConfigModule, registerAs } from '@nestjs/config';
import { DISTRIBUTED_LOCK_CONFIG_NAMESPACE, distributedLockConfig } from '../../src';

/** A function's own properties other than `length` and `name`, with their flags; functions shown as such. */
function ownProperties(factory: object): Record<string, PropertyDescriptor> {
  return Object.fromEntries(
    Object.getOwnPropertyNames(factory)
      .filter((name) => name !== 'length' && name !== 'name' && name !== 'prototype')
      .map((name) => {
        const descriptor = Object.getOwnPropertyDescriptor(factory, name) as PropertyDescriptor;
        const value = typeof descriptor.value === 'function' ? 'a function' : descriptor.value;
        return [name, { ...descriptor, value }];
      }),
  );
}

describe('distributedLockConfig', () => {
  it('loads with the package without requiring @nestjs/config', async () => {
    let requires = 0;
    await jest.isolateModulesAsync(async () => {
      jest.doMock('@nestjs/config', () => {
        requires += 1;
        // What Jest's CommonJS loader reports for the ESM-only @nestjs/config 12.
        throw new SyntaxError('Cannot use import statement outside a module');
      });
      const fresh = await import('../../src');
      expect(fresh.distributedLockConfig.KEY).toBe(`CONFIGURATION(${DISTRIBUTED_LOCK_CONFIG_NAMESPACE})`);
    });
    jest.dontMock('@nestjs/config');
    expect(requires).toBe(0);
  });

  it('carries the properties registerAs gives a namespace, with the same values and flags', () => {
    const reference = registerAs(DISTRIBUTED_LOCK_CONFIG_NAMESPACE, () => ({}));
    expect(ownProperties(distributedLockConfig)).toEqual(ownProperties(reference));
    expect(Object.keys(ownProperties(distributedLockConfig)).sort()).toEqual([
      'KEY',
      'PARTIAL_CONFIGURATION_KEY',
      'asProvider',
    ]);
  });

  it('builds asProvider() as registerAs does: ConfigModule.forFeature of the factory, injected by KEY', () => {
    const ours = distributedLockConfig.asProvider();
    const reference = registerAs(DISTRIBUTED_LOCK_CONFIG_NAMESPACE, () => ({})).asProvider();
    expect(ours.inject).toEqual(reference.inject);
    expect(ours.imports[0].module).toBe(ConfigModule);
    expect(ours.imports[0].module).toBe(reference.imports[0].module);
    expect(ours.useFactory({ port: 6390 })).toEqual({ port: 6390 });
  });
});
