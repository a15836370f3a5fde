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

  it('name their holder and the millisecond they were taken, whatever millisecond the previous one was', () => {
    const { holderToken, tokenOwner } = jest.requireActual('../../src/core/keys');
    const times = [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_001, 1_600_000_000_000];
    const owners = times.map((at, i) => tokenOwner(holderToken(`u.${i}`, 'pod@7', at)));
    expect(owners).toEqual(times.map((since) => ({ replica: 'pod@7', since })));
  });
});
