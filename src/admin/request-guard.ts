import { isIP } from 'node:net';
import { isLoopbackHost } from '../config/host-port.js';

/**
 * Which admin requests are answered at all. The admin port has no credentials, so two kinds of
 * request that a browser can be made to send are refused before any path is looked at:
 *
 * - **A request with an `Origin` header.** Browsers add it to every cross-origin POST, including the
 *   "simple" ones that need no CORS preflight (`Content-Type: text/plain`), so a web page open on the
 *   same host could otherwise drive `POST /quitquitquit`. Probes (kubelet, ECS, Docker) and scrapers
 *   never send one.
 * - **A `Host` that does not name the admin address.** A page on a name that the attacker re-points at
 *   127.0.0.1 (DNS rebinding) sends its own name as `Host`, and could then read /metrics as a
 *   same-origin response. The names accepted:
 *   - for a loopback bind (`127.0.0.1`, `::1`, `localhost`): loopback names and addresses only;
 *   - for any other bind (`0.0.0.0`, `::`, a pod IP): an IP address literal, or a loopback name. The
 *     kubelet, ECS and Prometheus' Kubernetes discovery all address the pod by IP, so `Host` is an IP
 *     there; a DNS name (other than the bind address itself) can only have come through a name the
 *     proxy cannot vouch for.
 *   The port in `Host` is not checked: `kubectl port-forward` and Docker port mappings change it.
 *   A request without `Host` (HTTP/1.0) names no other site and is accepted.
 *
 * Returns why a request is refused, or undefined to serve it.
 */
export function adminRequestProblem(
  headers: { origin?: string | string[] | undefined; host?: string | undefined },
  bindHost: string,
): string | undefined {
  if (headers.origin !== undefined) {
    return 'requests from web pages (with an Origin header) are refused';
  }
  if (headers.host === undefined) return undefined;
  const name = hostName(headers.host);
  if (name === undefined) return 'the Host header is malformed';
  if (hostAllowed(name, bindHost)) return undefined;
  return isLoopbackHost(bindHost)
    ? 'the Host header must name the loopback admin address (localhost, 127.0.0.1 or [::1])'
    : 'the Host header must be an IP address (or localhost), not a DNS name';
}

function hostAllowed(name: string, bindHost: string): boolean {
  const bind = bindHost.toLowerCase().replace(/^\[|\]$/g, '');
  if (name === bind || name === `${bind}.`) return true;
  if (isLoopbackHost(name)) return true;
  if (isLoopbackHost(bind)) return false;
  return isIP(name) !== 0;
}

/** The host part of a Host header, lower case, without port or IPv6 brackets; undefined if malformed. */
export function hostName(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    const ip = h.slice(1, end);
    return isIP(ip) === 6 ? ip : undefined;
  }
  const m = /^([^:\s]+)(?::(\d{1,5}))?$/.exec(h);
  return m ? m[1] : undefined;
}
