import { createToken } from '../../src/core/token';

describe('lock tokens', () => {
  it('are 128 random bits, never repeated across several pool refills', () => {
    const tokens = Array.from({ length: 2_000 }, createToken);
    expect(new Set(tokens).size).toBe(tokens.length);
    for (const token of tokens) expect(Buffer.from(token, 'base64url')).toHaveLength(16);
  });
});
