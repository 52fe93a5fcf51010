/** The throw-away PKI now lives in src/local-endpoint (the demo uses it too); test names kept. */
export {
  createCa,
  type IssueCertOptions,
  issueCert,
  type LocalCa as TestCa,
  type LocalCert as TestCert,
} from '../../src/core/certs.js';
