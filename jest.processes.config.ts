import type { Config } from 'jest';
import base from './jest.config';

// The suites that run the app as separate processes: the chaos runs, three replica processes,
// a replica under libfaketime. `npm run test:processes`; CI runs them after `npm test`.
const config: Config = {
  ...base,
  testMatch: ['**/*.processes.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 60_000,
};

export default config;
