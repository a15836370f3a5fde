import 'reflect-metadata';
import { copyMethodMetadata } from '../../src/utils/copy-method-metadata';

describe('copyMethodMetadata', () => {
  it('moves every own metadata entry and the name onto the wrapper', () => {
    function original(): void {}
    Reflect.defineMetadata('SCHEDULE_CRON_OPTIONS', { cronTime: '* * * * * *' }, original);
    Reflect.defineMetadata(Symbol.for('other'), 42, original);
    const wrapper = function (): void {};

    copyMethodMetadata(original, wrapper);

    expect(Reflect.getOwnMetadata('SCHEDULE_CRON_OPTIONS', wrapper)).toEqual({ cronTime: '* * * * * *' });
    expect(Reflect.getOwnMetadata(Symbol.for('other'), wrapper)).toBe(42);
    expect(wrapper.name).toBe('original');
  });
});
