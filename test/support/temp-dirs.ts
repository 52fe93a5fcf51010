/**
 * Temp directories for tests, removed when the test process exits.
 *
 * Tests write CA certificates, AWS config files and auth files holding test passwords: none may outlive
 * the run. Every directory a test or a support module makes goes through `tempDir`, which names it
 * `dsql-proxy-<name>-XXXXXX` in the OS temp dir and removes it (recursively) at process exit, whether
 * the tests passed or not. A file's `after()` hooks may still be using a directory, so removal waits
 * for exit rather than for the first hook. `test/integration/temp-dirs.test.ts` checks that a
 * representative test file leaves nothing behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();
let hooked = false;

/** Removes every directory made so far; also runs at process exit. */
export function removeTempDirs(): void {
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A directory a child process still writes into: the next attempt, or the OS, removes it.
      continue;
    }
    made.delete(dir);
  }
}

/** Makes `<tmpdir>/dsql-proxy-<name>-XXXXXX` (or under `parent`) and removes it at process exit. */
export function tempDir(name: string, parent: string = tmpdir()): string {
  if (!hooked) {
    hooked = true;
    process.once('exit', removeTempDirs);
  }
  const dir = mkdtempSync(join(parent, `dsql-proxy-${name}-`));
  made.add(dir);
  return dir;
}
