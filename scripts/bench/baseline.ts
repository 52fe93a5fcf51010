/**
 * `npm run bench:baseline -- <commit>`: builds the proxy's CLI from a git commit into a temp dir, for
 * `npm run bench -- --baseline-cli <path>` (docs/benchmarks.md, "Comparing a change against its base").
 *
 * The commit's tree is exported with `git archive` (no worktree is added to the repository), then
 * `npm ci` and `npm run build` run in it. Prints the CLI's path (and only that) on stdout; on failure
 * the temp dir is removed. `npm run bench:baseline -- --remove <path>` removes a dir it made.
 */
import { mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mustRun } from './proc.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Every dir this script makes starts with this, and --remove removes nothing else. */
const PREFIX = 'dsql-proxy-baseline-';

const HELP = `npm run bench:baseline -- <commit>       build dist/cli.js of <commit> in a temp dir, print its path
npm run bench:baseline -- --remove <path>  remove that temp dir (the CLI's path or the dir itself)`;

function log(msg: string): void {
  process.stderr.write(`[bench:baseline] ${msg}\n`);
}

/** The temp dir a CLI path (…/dsql-proxy-baseline-XXXX/dist/cli.js) or the dir itself names, if ours. */
function ownDir(path: string): string {
  let dir = realpathSync(path);
  if (statSync(dir).isFile()) dir = dirname(dirname(dir));
  if (dirname(dir) !== realpathSync(tmpdir()) || !basename(dir).startsWith(PREFIX)) {
    throw new Error(`${path} is not a dir that bench:baseline made (${join(tmpdir(), PREFIX)}…)`);
  }
  return dir;
}

async function build(commit: string): Promise<string> {
  const sha = (
    await mustRun('git', ['rev-parse', '--verify', `${commit}^{commit}`], { cwd: ROOT })
  ).stdout.trim();
  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}${sha.slice(0, 7)}-`));
  try {
    log(`exporting ${sha.slice(0, 12)} into ${dir}`);
    const archive = join(dir, 'src.tar');
    await mustRun('git', ['archive', '--format=tar', '-o', archive, sha], { cwd: ROOT });
    await mustRun('tar', ['-xf', archive, '-C', dir]);
    rmSync(archive);
    log('npm ci (offline cache first)');
    await mustRun('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: dir,
      timeoutMs: 15 * 60_000,
    });
    log('npm run build');
    await mustRun('npm', ['run', 'build'], { cwd: dir, timeoutMs: 10 * 60_000 });
    const cli = join(dir, 'dist/cli.js');
    statSync(cli);
    log(`built; remove it afterwards with: npm run bench:baseline -- --remove ${dir}`);
    return cli;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function main(argv: string[]): Promise<void> {
  const [first, second] = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    console.log(HELP);
    if (first === undefined) process.exitCode = 2;
    return;
  }
  if (first === '--remove') {
    if (second === undefined) throw new Error('--remove needs the path bench:baseline printed');
    const dir = ownDir(second);
    rmSync(dir, { recursive: true, force: true });
    log(`removed ${dir}`);
    return;
  }
  console.log(await build(first));
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`bench:baseline failed: ${(err as Error).message}\n`);
  process.exit(1);
});
