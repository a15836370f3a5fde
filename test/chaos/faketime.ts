import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Finds libfaketime (Debian package `faketime` / `libfaketime`). The thread-safe build
 * (libfaketimeMT) is preferred: node runs V8 and libuv threads that read the clock too. Both
 * shift `Date.now()` by a fixed FAKETIME offset such as "+0.800" in node 20; with
 * FAKETIME_DONT_FAKE_MONOTONIC=1 neither touches CLOCK_MONOTONIC, which timers and the logs use.
 * `CHAOS_LIBFAKETIME` overrides the search. Returns null when it is not installed.
 */
export function findLibfaketime(): string | null {
  const override = process.env.CHAOS_LIBFAKETIME;
  if (override) return existsSync(override) ? override : null;
  const candidates = [...fromDpkg(), ...fromLibraryDirectories()];
  return (
    candidates.find((path) => path.endsWith('libfaketimeMT.so.1')) ??
    candidates.find((path) => path.endsWith('libfaketime.so.1')) ??
    null
  );
}

function fromDpkg(): string[] {
  try {
    const listing = execFileSync('dpkg', ['-L', 'libfaketime'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return listing.split('\n').filter((path) => /\/libfaketime(MT)?\.so\.1$/.test(path) && existsSync(path));
  } catch {
    return [];
  }
}

function fromLibraryDirectories(): string[] {
  const roots = ['/usr/lib', '/usr/local/lib', '/usr/lib64'];
  const directories = roots.flatMap((root) => {
    if (!existsSync(root)) return [];
    const multiarch = readdirSync(root).filter((name) => name.endsWith('-linux-gnu'));
    return [join(root, 'faketime'), ...multiarch.map((name) => join(root, name, 'faketime'))];
  });
  return directories.flatMap((directory) =>
    ['libfaketimeMT.so.1', 'libfaketime.so.1'].map((file) => join(directory, file)).filter((path) => existsSync(path)),
  );
}

/** The FAKETIME value for a fixed offset of `skewMs`, e.g. 800 → "+0.800", -900 → "-0.900". */
export function faketimeOffset(skewMs: number): string {
  return `${skewMs < 0 ? '-' : '+'}${(Math.abs(skewMs) / 1000).toFixed(3)}`;
}
