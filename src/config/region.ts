import { ConfigError } from './config-error.js';

/** The pattern AWS's own DSQL connectors use; also matches PrivateLink names (`<id>.dsql-fnh4.<region>.on.aws`). */
const ENDPOINT_REGION = /\.dsql[^.]*\.([^.]+)\.on\.aws$/;

const REGION_SHAPE = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** The region in a DSQL hostname, or undefined when the name does not follow the DSQL pattern. */
export function regionFromEndpoint(endpoint: string): string | undefined {
  return ENDPOINT_REGION.exec(endpoint.toLowerCase())?.[1];
}

/** Checks a region name's shape (`us-east-1`, `us-gov-west-1`); returns it in lower case. */
export function checkRegion(s: string): string {
  const r = s.trim().toLowerCase();
  if (!REGION_SHAPE.test(r)) throw new Error('is not an AWS region name such as us-east-1');
  return r;
}

/**
 * The region tokens are signed for. The endpoint decides; an explicit region must agree with it, and is
 * needed only when the endpoint is not a DSQL hostname. AWS_REGION is deliberately not consulted: a
 * token signed for the wrong region is refused by DSQL.
 */
export function resolveRegion(
  endpoint: string,
  explicit: string | undefined,
  explicitLabel = '--region',
): string {
  const parsed = regionFromEndpoint(endpoint);
  if (parsed !== undefined && explicit !== undefined && parsed !== explicit) {
    throw new ConfigError(
      `${explicitLabel} is ${explicit} but the endpoint ${endpoint} is in ${parsed}: tokens signed for the wrong region are refused; remove ${explicitLabel} or fix the endpoint`,
      { key: 'region' },
    );
  }
  const region = explicit ?? parsed;
  if (region === undefined) {
    throw new ConfigError(
      `cannot tell the region from the endpoint ${endpoint} (expected <cluster-id>.dsql.<region>.on.aws): pass --region (or DSQL_PROXY_REGION)`,
      { key: 'region' },
    );
  }
  return region;
}
