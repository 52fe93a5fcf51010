import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from './config-error.js';

export interface HostPort {
  host: string;
  port: number;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** True for a DNS name made of letters, digits and hyphens (RFC 1123); IP literals are not names. */
export function isHostname(s: string): boolean {
  if (s.length === 0 || s.length > 253 || isIP(s) !== 0) return false;
  return s
    .toLowerCase()
    .split('.')
    .every((label) => LABEL.test(label));
}

/**
 * Checks the DSQL endpoint: a bare hostname, because it is also the TLS server name (SNI) and part of
 * the signed token. Returns it in lower case. Throws Error with a message that does not name the key.
 */
export function checkEndpointHost(s: string): string {
  const text = s.trim();
  if (text.includes('://')) {
    throw new Error(
      'give the hostname only, without a scheme (e.g. abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws)',
    );
  }
  if (isIP(text.replace(/^\[|\]$/g, '')) !== 0) {
    throw new Error(
      'must be the cluster hostname, not an IP address (the hostname is the TLS server name and is signed into the token); dial an address with connect-to',
    );
  }
  if (/[:/]/.test(text)) {
    throw new Error(
      'give the hostname only, without port or path; to dial another address or port use connect-to',
    );
  }
  if (!isHostname(text)) throw new Error('is not a valid hostname');
  return text.toLowerCase().replace(/\.$/, '');
}

export interface HostPortOptions {
  /** Allow port 0 (listen on an ephemeral port, for tests). */
  allowPortZero?: boolean;
}

/**
 * Parses `HOST:PORT`, with IPv6 in brackets (`[::1]:5432`). The host is returned without brackets.
 * Returns an error text instead of throwing, so both parseHostPort and the schema can word the error.
 */
export function hostPortProblem(s: string, opts: HostPortOptions = {}): HostPort | string {
  const text = s.trim();
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
    if (!m) return 'expected [IPV6]:PORT, e.g. [::1]:5432';
    host = m[1] as string;
    portText = m[2] as string;
    if (!isIPv6(host)) return `"${host}" is not an IPv6 address`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return 'expected HOST:PORT, e.g. 127.0.0.1:5432';
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return 'put IPv6 addresses in brackets, e.g. [::1]:5432';
    if (host === '') return 'the host is missing: expected HOST:PORT, e.g. 127.0.0.1:5432';
    if (!isIPv4(host) && !isHostname(host)) return `"${host}" is neither an IPv4 address nor a hostname`;
    host = host.toLowerCase();
  }
  if (!/^\d{1,5}$/.test(portText)) return `port "${portText}" is not a number between 1 and 65535`;
  const port = Number(portText);
  const min = opts.allowPortZero ? 0 : 1;
  if (port < min || port > 65535) return `port ${port} is out of range (${min}..65535)`;
  return { host, port };
}

/** Parses `HOST:PORT` (`[::1]:5432` for IPv6); throws ConfigError naming `key`. */
export function parseHostPort(s: string, key: string, opts: HostPortOptions = {}): HostPort {
  const r = hostPortProblem(s, opts);
  if (typeof r === 'string') throw new ConfigError(`invalid ${key} "${s}": ${r}`, { key });
  return r;
}

/** Formats a HostPort back to the form parseHostPort reads. */
export function formatHostPort(hp: HostPort): string {
  return isIPv6(hp.host) ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4'); // also matches IPv4-mapped IPv6 (::ffff:127.x)
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (any spelling, also IPv4-mapped 127.x) and `localhost`. Other names are not trusted. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === 'localhost.') return true;
  // net.isIPv4 accepts only four plain decimal octets, so the prefix is exactly 127.0.0.0/8 (and it
  // costs nanoseconds where BlockList.check costs about 2 µs: the session asks once per client).
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return LOOPBACK.check(h, 'ipv6');
  return false;
}
