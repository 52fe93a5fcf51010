/**
 * Three clusters in one proxy process, for the clusters tests: `prod` (us-east-1) and `staging`
 * (eu-west-1) on the shared listener, `solo` (staging's endpoint, no role map) on a listener of its
 * own. Each endpoint accepts only its own cluster's AWS keys, which the proxy finds under the
 * cluster's profile in a temp AWS credentials file: a login that lands proves per-cluster credentials.
 * prod maps the local user `app` to the DSQL role `admin`; staging and solo do not map it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DsqlEndpoint, startDsqlEndpoint } from '../../src/local-endpoint/endpoint.js';
import { type ProxyProcess, startProxyProcess } from './proxy-process.js';
import { clusterHostname, generateCredentials, startTestStack, type TestStack } from './stack.js';
import { tempDir } from './temp-dirs.js';

export interface ClustersSetup {
  stack: TestStack;
  prod: DsqlEndpoint;
  staging: DsqlEndpoint;
  proxy: ProxyProcess;
  /** The port of solo's own listener. */
  soloPort: number;
  stop(): Promise<void>;
}

export async function startClusters(extraArgs: string[] = []): Promise<ClustersSetup> {
  const prodKeys = generateCredentials();
  const stagingKeys = generateCredentials();
  const stack = await startTestStack({ region: 'us-east-1', credentials: prodKeys });
  const staging = await startDsqlEndpoint({
    hostname: clusterHostname('eu-west-1'),
    region: 'eu-west-1',
    credentials: stagingKeys,
    postgres: stack.postgres,
  });
  const dir = tempDir('clusters');
  writeFileSync(join(dir, 'prod-ca.pem'), stack.endpoint.caPem);
  writeFileSync(join(dir, 'staging-ca.pem'), staging.caPem);
  writeFileSync(join(dir, 'aws-config'), '[profile prod]\n\n[profile staging]\n');
  writeFileSync(
    join(dir, 'aws-credentials'),
    [
      `[prod]\naws_access_key_id = ${prodKeys.accessKeyId}\naws_secret_access_key = ${prodKeys.secretAccessKey}\n`,
      `[staging]\naws_access_key_id = ${stagingKeys.accessKeyId}\naws_secret_access_key = ${stagingKeys.secretAccessKey}\n`,
    ].join('\n'),
  );
  const config = join(dir, 'dsql-proxy.yaml');
  writeFileSync(
    config,
    [
      'listen: 127.0.0.1:0',
      'clusters:',
      '  prod:',
      `    endpoint: ${stack.hostname}`,
      `    connect-to: 127.0.0.1:${stack.endpoint.port}`,
      '    ca-file: prod-ca.pem',
      '    profile: prod',
      '    role-map:',
      '      app: admin',
      '  staging:',
      `    endpoint: ${staging.hostname}`,
      `    connect-to: 127.0.0.1:${staging.port}`,
      '    ca-file: staging-ca.pem',
      '    profile: staging',
      '    token-ttl: 5m',
      '  solo:',
      `    endpoint: ${staging.hostname}`,
      `    connect-to: 127.0.0.1:${staging.port}`,
      '    ca-file: staging-ca.pem',
      '    profile: staging',
      '    listen: 127.0.0.1:0',
      '',
    ].join('\n'),
  );
  const proxy = await startProxyProcess(undefined, {
    credentials: false,
    env: {
      AWS_CONFIG_FILE: join(dir, 'aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials'),
    },
    args: ['--config', config, ...extraArgs],
  });
  const listening = await proxy.waitForLog((l) => l.event === 'listening');
  const listeners = listening.listeners as Array<{ port: number; clusters: string[] }>;
  const solo = listeners.find((l) => l.clusters.includes('solo'));
  if (!solo) throw new Error(`no listener for solo in ${JSON.stringify(listeners)}`);
  return {
    stack,
    prod: stack.endpoint,
    staging,
    proxy,
    soloPort: solo.port,
    async stop() {
      await proxy.stop();
      await staging.close();
      await stack.stop();
    },
  };
}
