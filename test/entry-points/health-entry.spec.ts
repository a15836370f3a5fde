import { join, relative, resolve } from 'node:path';
import { importsOf, sourceFiles } from '../support/source-imports';

const SRC = resolve(__dirname, '../../src');
const HEALTH = join(SRC, 'health');

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
