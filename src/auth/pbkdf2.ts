import { pbkdf2 } from 'node:crypto';

/**
 * PBKDF2-HMAC-SHA-256 off the event loop. `crypto.pbkdf2` runs on libuv's thread pool (4 threads by
 * default), which DNS lookups and file reads share: at most MAX_PARALLEL derivations run at once and
 * the rest wait their turn, so a burst of logins cannot take every thread away from the upstream
 * dial's address lookups, and relayed sessions never wait on a derivation.
 */
export type Pbkdf2 = (password: Buffer, salt: Buffer, iterations: number) => Promise<Buffer>;

const KEY_LENGTH = 32;
const MAX_PARALLEL = 2;

let running = 0;
const waiting: Array<() => void> = [];

export const pbkdf2Sha256: Pbkdf2 = async (password, salt, iterations) => {
  if (running >= MAX_PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      pbkdf2(password, salt, iterations, KEY_LENGTH, 'sha256', (err, key) =>
        err ? reject(err) : resolve(key),
      );
    });
  } finally {
    running--;
    waiting.shift()?.();
  }
};
