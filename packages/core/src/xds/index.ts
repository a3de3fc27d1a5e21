// The xDS layer of @ambient/core: Istio's workload types and their protobuf codec, the Delta ADS
// server (control plane side) and client (ztunnel and waypoint side), the loaded protos, and the
// waypoint's L7 objects under Ambient's own type (waypoint-config.ts).

export {
  addressResourceName,
  authorizationResourceName,
  decodeAddress,
  decodeAuthorization,
  encodeAddress,
  encodeAuthorization,
} from "./codec.js";
export {
  type CredentialsSource,
  DeltaAdsClient,
  type XdsNackInfo,
  type XdsResourceHandler,
} from "./delta-client.js";
export {
  addDeltaAdsService,
  type DeltaAdsHooks,
  DeltaAdsServer,
  type NackEvent,
  type ResourceVisibility,
  type XdsClientInfo,
} from "./delta-server.js";
export { protos } from "./proto.js";
export { ResourceStore } from "./resource-store.js";
export * from "./types.js";
export {
  decodeL7Resource,
  encodeL7Resource,
  isSecretResourceName,
  L7_RESOURCE_TYPE_URL,
  type L7Resource,
  l7ResourceName,
} from "./waypoint-config.js";
export {
  type DeltaDiscoveryResponse,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  nodeToWire,
  structFromJson,
} from "./wire.js";
