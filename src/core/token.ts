import { randomBytes } from 'node:crypto';

/** 128 random bits per process: no other process draws the same, or can guess it. */
const PROCESS_PART = randomBytes(16).toString('base64url');
let issued = 0;

/**
 * A lock token no other acquisition has, in this process or any other: the process's random part
 * and a counter. A counter costs less than fresh random bytes per lock, and uniqueness is all a
 * token must give (anyone who can read Redis can read a token anyway).
 */
export function createToken(): string {
  return `${PROCESS_PART}.${(++issued).toString(36)}`;
}
