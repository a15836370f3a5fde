import type { Cluster, Redis } from 'ioredis';
import { FENCE_FIELD, lockKeyPattern, lockKeys, lockNameOfKey, tokenOwner } from '../keys';
import type { HeldLock } from './fleet-reports';
import { scanKeys } from './redis-scan';

/** Locks read concurrently. */
const READ_BATCH = 100;

/** Every lock held now, sorted by name: found with SCAN, read in batches. */
export async function heldLocks(client: Redis | Cluster, keyPrefix: string): Promise<HeldLock[]> {
  const keys = await scanKeys(client, lockKeyPattern(keyPrefix), 'string');
  const named = keys.flatMap((key) => {
    const name = lockNameOfKey(keyPrefix, key);
    return name === undefined ? [] : [{ key, name }];
  });
  const held: HeldLock[] = [];
  for (let i = 0; i < named.length; i += READ_BATCH) {
    const batch = await Promise.all(
      named.slice(i, i + READ_BATCH).map((lock) => readLock(client, keyPrefix, lock.key, lock.name)),
    );
    for (const lock of batch) if (lock) held.push(lock);
  }
  return held.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function readLock(
  client: Redis | Cluster,
  keyPrefix: string,
  key: string,
  name: string,
): Promise<HeldLock | undefined> {
  const [token, ttl, fence] = await Promise.all([
    client.get(key),
    client.pttl(key),
    client.hget(lockKeys(keyPrefix, name).state, FENCE_FIELD),
  ]);
  if (token === null) return undefined; // released or expired since the scan
  const { replica, since } = tokenOwner(token);
  return {
    name,
    key,
    replica,
    since,
    ttlLeftMs: ttl >= 0 ? ttl : undefined,
    fencingToken: fence === null ? undefined : Number(fence),
  };
}
