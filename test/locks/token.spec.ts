describe('lock tokens', () => {
  const loadCreateToken = (): (() => string) => {
    let createToken!: () => string;
    jest.isolateModules(() => ({ createToken } = jest.requireActual('../../src/core/keys')));
    return createToken;
  };

  it('never repeat within a process', () => {
    const createToken = loadCreateToken();
    const tokens = Array.from({ length: 10_000 }, createToken);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('start with 128 random bits drawn once per process, so two processes never share one', () => {
    const [first, second] = [loadCreateToken()(), loadCreateToken()()]; // the module loaded afresh, as in a new process
    const randomPart = (token: string) => token.slice(0, token.indexOf('.'));
    expect(Buffer.from(randomPart(first), 'base64url')).toHaveLength(16);
    expect(randomPart(first)).not.toBe(randomPart(second));
    expect(first).not.toBe(second);
  });
});
