import type { Config } from 'jest';

// Jest 29 reads this file through ts-node (a dev dependency).
const config: Config = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  setupFiles: ['reflect-metadata'],
  testTimeout: 30_000,
  // Each suite starts its own redis-server; two workers match the two cores CI has.
  maxWorkers: 2,
};

export default config;
