import { DistributedLockConfigError } from '../errors';
import { type Expectation, HIDDEN_VALUE } from '../validation';
import type { DistributedLockOptions, SettingNames } from './lock-options';

export type Check = <T>(option: keyof DistributedLockOptions, rule: Expectation<T>) => T | undefined;

/** Settings whose value may hold a password: a bad one is reported without its value. */
const SECRET_SETTINGS: readonly (keyof DistributedLockOptions)[] = ['url', 'password', 'sentinelPassword'];

/** Reads one option of `options`, throwing with the name the user wrote when it breaks `rule`. */
export function checkerFor(options: DistributedLockOptions, names: SettingNames): Check {
  return (option, rule) => {
    const value = options[option];
    if (value === undefined) return undefined;
    if (!rule.test(value)) {
      const shown = SECRET_SETTINGS.includes(option) ? HIDDEN_VALUE : value;
      throw new DistributedLockConfigError(names[option], shown, rule.expected);
    }
    return value;
  };
}
