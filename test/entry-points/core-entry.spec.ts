import { relative, resolve } from 'node:path';
import { importsOf, sourceFiles } from '../support/source-imports';

const CORE = resolve(__dirname, '../../src/core');

// dpa-distributed-lock-cron/core is for apps without Nest: nothing under src/core may pull Nest in.
describe('the framework-agnostic core entry point', () => {
  it.each(sourceFiles(CORE).map((file) => [relative(CORE, file), file]))(
    '%s imports no @nestjs package and nothing outside core',
    (_name, file) => {
      for (const specifier of importsOf(file)) {
        expect(specifier).not.toMatch(/^@nestjs\//);
        if (specifier.startsWith('.')) expect(resolve(file, '..', specifier).startsWith(CORE)).toBe(true);
      }
    },
  );

  it('exports the engine, the lock handle and the errors', async () => {
    const core = await import('../../src/core');
    expect(Object.keys(core)).toEqual(
      expect.arrayContaining([
        'LockEngine',
        'LockHandle',
        'currentLock',
        'lockOptionsFromEnvironment',
        'LockLostError',
        'DistributedLockError',
      ]),
    );
  });
});
