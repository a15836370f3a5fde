import type { Config } from 'jest';
import base from './jest.config';

// The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
// `npm run test:browser`; CI installs Chromium and runs it after `npm test`.
const config: Config = {
  ...base,
  testMatch: ['**/*.browser.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 60_000,
};

export default config;
