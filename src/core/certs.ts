/**
 * Throw-away PKI for the local endpoint (tests and `dsql-proxy demo`): a CA and server certificates
 * signed by it.
 *
 * ECDSA P-256 keeps generation in the low milliseconds. Tests use `issueCert` both for the
 * endpoint's own hostname and for a WRONG hostname, to prove the proxy verifies the peer
 * certificate against the real cluster hostname (verify-full, never disabled).
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface LocalCa {
  name: string;
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  privateKey: webcrypto.CryptoKey;
}

export interface LocalCert {
  certPem: string;
  keyPem: string;
}

export interface IssueCertOptions {
  hostnames: string[];
  ips?: string[];
  /** Defaults: one day ago .. 30 days ahead. Override to make an expired / not-yet-valid cert. */
  notBefore?: Date;
  notAfter?: Date;
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

/** Positive serial (leading nibble < 8 keeps the DER INTEGER non-negative). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

export async function createCa(name: string): Promise<LocalCa> {
  const keys = await generateKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 365 * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    name,
    certPem: cert.toString('pem'),
    keyPem: await privateKeyPem(keys.privateKey),
    cert,
    privateKey: keys.privateKey,
  };
}

export async function issueCert(ca: LocalCa, opts: IssueCertOptions): Promise<LocalCert> {
  const ips = opts.ips ?? [];
  for (const ip of ips) if (!isIP(ip)) throw new Error(`issueCert: not an IP address: ${ip}`);
  if (opts.hostnames.length === 0 && ips.length === 0) throw new Error('issueCert: no names');
  const keys = await generateKeys();
  const now = Date.now();
  const cn = opts.hostnames[0] ?? ips[0];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${cn}`,
    issuer: ca.cert.subject,
    notBefore: opts.notBefore ?? new Date(now - DAY_MS),
    notAfter: opts.notAfter ?? new Date(now + 30 * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      // Clients match the hostname against SAN entries only (CN is ignored by modern verifiers).
      new x509.SubjectAlternativeNameExtension([
        ...opts.hostnames.map((value) => ({ type: 'dns' as const, value })),
        ...ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}
