/**
 * The integration tests' stack: the shared implementation in src/local-endpoint (the demo uses it
 * too), under the names the tests use.
 */
export {
  clusterHostname,
  generateCredentials,
  type LocalStack as TestStack,
  type LocalStackOptions as TestStackOptions,
  startLocalStack as startTestStack,
} from '../../src/local-endpoint/stack.js';
