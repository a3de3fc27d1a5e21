// ztunnel's xDS client: Istio's workload types over Delta ADS, validated, into ProxyState.
export { validateAddress, validateAuthorization } from "./validate.js";
export {
  DEFAULT_ZTUNNEL_NAMESPACE,
  proxyStateHandlers,
  startXdsClient,
  whenSynced,
  type XdsClientOptions,
  ztunnelNode,
} from "./xds-client.js";
