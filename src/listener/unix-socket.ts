import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

/**
 * Listens on `<dir>/.s.PGSQL.<port>`, the socket path libpq derives from `-h <dir> -p <port>`.
 *
 * A socket file left by a crashed process is removed, but only after checking that nobody answers
 * on it: a live server keeps its socket. Permissions are 0777 like PostgreSQL's default
 * unix_socket_permissions; who may log in is still decided by local authentication.
 */
export async function listenUnixSocket(server: net.Server, dir: string, port: number): Promise<string> {
  const path = join(dir, `.s.PGSQL.${port}`);
  if (existsSync(path)) {
    if (await answers(path)) throw new Error(`${path} is in use by another server`);
    unlinkSync(path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o777);
  return path;
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
