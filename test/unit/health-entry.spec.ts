import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const SRC = resolve(__dirname, '../../src');
const HEALTH = join(SRC, 'health');

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

const outsideHealth = sourceFiles(SRC).filter((file) => !file.startsWith(HEALTH + '/'));

// @nestjs/terminus is an optional peer: only dpa-distributed-lock-cron/health may load it.
describe('the health entry point', () => {
  it.each(outsideHealth.map((file) => [relative(SRC, file), file]))(
    '%s loads neither @nestjs/terminus nor the health entry',
    (_name, file) => {
      for (const specifier of importsOf(file)) {
        expect(specifier).not.toMatch(/^@nestjs\/terminus/);
        if (specifier.startsWith('.')) expect(resolve(file, '..', specifier).startsWith(HEALTH)).toBe(false);
      }
    },
  );

  it('exports the indicator', async () => {
    const health = await import('../../src/health');
    expect(Object.keys(health)).toEqual(expect.arrayContaining(['DistributedLockHealthIndicator']));
  });
});
