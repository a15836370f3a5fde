import type { Config } from 'jest';

// Jest 29 reads this file through ts-node (a dev dependency).
const config: Config = {
  // Node's, with each file's garbage collected at its end: see the file for why.
  testEnvironment: '<rootDir>/test/support/collected-environment.ts',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  // Suites that run the app as separate processes (the chaos runs, three replicas, libfaketime)
  // are `npm run test:processes` (jest.processes.config.ts), and the dashboard in Chromium is
  // `npm run test:browser` (jest.browser.config.ts); CI runs both.
  testPathIgnorePatterns: ['/node_modules/', '\\.processes\\.spec\\.ts$', '\\.browser\\.spec\\.ts$'],
  setupFiles: ['reflect-metadata'],
  testTimeout: 30_000,
  // Each suite starts its own redis-server; two workers match the two cores CI has.
  maxWorkers: 2,
};

export default config;
