// ztunnel's xDS client: Istio's workload types over Delta ADS, validated, into ProxyState.
export {
  proxyStateHandlers,
  startXdsClient,
  whenSynced,
  xdsNotSynced,
} from "./xds-client.js";
