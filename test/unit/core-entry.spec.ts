import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const CORE = resolve(__dirname, '../../src/core');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  return [...source.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]([^'"]+)['"]/g)].map((match) => match[1]);
}

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
