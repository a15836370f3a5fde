// Pins that `npm run lint` (dependency-cruiser's no-circular) rejects import cycles, type-only ones included.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const repoRoot = path.resolve(__dirname, '../..');
const fixture = path.join(repoRoot, 'test/fixtures/type-only-cycle');

function depcruise(dir: string) {
  const bin = path.join(repoRoot, 'node_modules/.bin/depcruise');
  const args = [dir, '--config', '.dependency-cruiser.cjs', '--output-type', 'err'];
  const result = spawnSync(bin, args, { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  expect(result.error).toBeUndefined(); // not started, or killed by the timeout
  return result;
}

describe('import cycles', () => {
  it('the lint rule fails on a cycle made only of type imports', () => {
    const result = depcruise(fixture);
    const output = result.stdout + result.stderr;
    expect(result.status).not.toBe(0);
    expect(output).toContain('no-circular');
    expect(output).toContain('left.ts');
    expect(output).toContain('right.ts');
  });

  it('the same files without the cycle pass', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'type-only-chain-'));
    try {
      fs.copyFileSync(path.join(fixture, 'left.ts'), path.join(dir, 'left.ts'));
      fs.writeFileSync(path.join(dir, 'right.ts'), 'export interface Right {\n  name: string;\n}\n');
      const result = depcruise(dir);
      expect({ status: result.status, output: result.stdout + result.stderr }).toMatchObject({ status: 0 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
