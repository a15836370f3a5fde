import { randomFillSync } from 'node:crypto';

const TOKEN_BYTES = 16; // 128 random bits: no other holder can guess a token
const POOL_TOKENS = 256;
const pool = Buffer.alloc(TOKEN_BYTES * POOL_TOKENS);
let next = POOL_TOKENS;

/**
 * A fresh lock token: 128 bits from the OS's CSPRNG, as base64url. Random bytes are drawn 4 KiB at
 * a time, so a token costs a slice, not a system call; every token uses bytes no other token used.
 */
export function createToken(): string {
  if (next === POOL_TOKENS) {
    randomFillSync(pool);
    next = 0;
  }
  const start = next++ * TOKEN_BYTES;
  return pool.toString('base64url', start, start + TOKEN_BYTES);
}
