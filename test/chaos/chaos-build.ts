import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root: the nearest folder above this file with a package.json (also from .chaos/build). */
export const REPO_ROOT = (() => {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`No package.json above ${__dirname}`);
  }
})();
export const CHAOS_DIR = join(REPO_ROOT, '.chaos');
/** The compiled chaos replica (replica.ts) and the drain replica (drain-replica.ts). */
export const REPLICA_SCRIPT = join(CHAOS_DIR, 'build', 'test', 'chaos', 'replica.js');
export const DRAIN_REPLICA_SCRIPT = join(CHAOS_DIR, 'build', 'test', 'chaos', 'drain-replica.js');
/** The replica app of the job-policy process tests (policy-replica.ts). */
export const POLICY_REPLICA_SCRIPT = join(CHAOS_DIR, 'build', 'test', 'chaos', 'policy-replica.js');
/** The replica app of the daylight-saving test under libfaketime (dst-replica.ts). */
export const DST_REPLICA_SCRIPT = join(CHAOS_DIR, 'build', 'test', 'chaos', 'dst-replica.js');

/**
 * Compiles the replica apps (and src with them) into .chaos/build with test/chaos/tsconfig.json.
 * Suites that start at once (jest workers) build one after the other; the second finds nothing
 * to emit, so it does not rewrite a file the first one is about to run.
 */
export function buildReplicaApp(): void {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [REPO_ROOT] });
  withBuildLock(() =>
    execFileSync(process.execPath, [tsc, '-p', join(REPO_ROOT, 'test', 'chaos', 'tsconfig.json')], {
      cwd: REPO_ROOT,
      stdio: 'inherit',
    }),
  );
}

/** Runs `build` holding the directory .chaos/build.lock (mkdir is atomic); a lock older than 2 min is stale. */
function withBuildLock(build: () => void): void {
  const lock = join(CHAOS_DIR, 'build.lock');
  mkdirSync(CHAOS_DIR, { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > 120_000) rmSync(lock, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`${lock} was held for 3 min: is another build stuck?`);
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); // a synchronous sleep
  }
  try {
    build();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
