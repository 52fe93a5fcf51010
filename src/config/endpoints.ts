import { ConfigError } from './config-error.js';
import { formatHostPort, type HostPort } from './host-port.js';
import { resolveRegion } from './region.js';
import type { ConnectToEntry } from './schema.js';

/** One DSQL endpoint as the proxy uses it: its own region (token), SNI and dial address. */
export interface EndpointConfig {
  /** The cluster hostname: SNI, certificate identity and token host. */
  hostname: string;
  /** The region its tokens are signed for. */
  region: string;
  /** Where the TCP connection goes (default hostname:5432). */
  connectTo: HostPort;
}

interface Given<T> {
  value: T;
  label: string;
}

/**
 * Turns the endpoint, region and connect-to options into the ordered endpoint list.
 * - Each endpoint's region comes from its hostname. An explicit region applies to every endpoint and
 *   must agree with each hostname that names one; it is only needed for hostnames that do not.
 * - connect-to is `ENDPOINT=HOST:PORT` per endpoint; the plain `HOST:PORT` form is kept for the
 *   single-endpoint case, where it is unambiguous. A later entry for an endpoint replaces an earlier one.
 */
export function resolveEndpoints(
  endpoints: Given<string[]>,
  region: Given<string> | undefined,
  connectTo: Given<ConnectToEntry[]> | undefined,
): EndpointConfig[] {
  const seen = new Set<string>();
  for (const hostname of endpoints.value) {
    if (seen.has(hostname)) {
      throw new ConfigError(`${endpoints.label} names ${hostname} twice: give each endpoint once`, {
        key: 'endpoint',
      });
    }
    seen.add(hostname);
  }
  const dial = new Map<string, HostPort>();
  for (const entry of connectTo?.value ?? []) {
    const label = connectTo?.label ?? 'connect-to';
    if (entry.endpoint === undefined) {
      if (endpoints.value.length > 1) {
        throw new ConfigError(
          `${label} ${formatHostPort(entry.to)} does not say which endpoint it is for, and there are ${endpoints.value.length}: write ENDPOINT=HOST:PORT, e.g. ${endpoints.value[0]}=${formatHostPort(entry.to)}`,
          { key: 'connect-to' },
        );
      }
    } else if (!seen.has(entry.endpoint)) {
      throw new ConfigError(
        `${label} is for ${entry.endpoint}, which is not one of the endpoints (${endpoints.value.join(', ')})`,
        { key: 'connect-to' },
      );
    }
    // A later entry for the same endpoint wins, as a repeated single-value flag always did (a
    // script may append `--connect-to` to override an earlier one).
    dial.set(entry.endpoint ?? (endpoints.value[0] as string), entry.to);
  }
  return endpoints.value.map((hostname) => ({
    hostname,
    region: resolveRegion(hostname, region?.value, region?.label),
    connectTo: dial.get(hostname) ?? { host: hostname, port: 5432 },
  }));
}
