export { formatHostPort, isLoopbackHost } from './host-port.js';
export {
  type ClusterConfig,
  ConfigError,
  DEFAULT_CLUSTER,
  diffRoleMap,
  type EndpointConfig,
  type HostPort,
  helpText,
  loadConfig,
  OPTION_DOCS,
  type ProxyConfig,
  parseHostPort,
  type RoleMapChanges,
  reloadRoleMaps,
  reloadUsers,
  resolveRole,
  wantsHelp,
} from './load.js';
export { envName, type OptionDoc, USAGE } from './options.js';
export { regionFromEndpoint } from './region.js';
