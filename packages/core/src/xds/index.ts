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
  packAny,
} from "./codec.js";
export {
  type CallMetadataSource,
  DeltaAdsClient,
  type DeltaAdsClientEvents,
  type DeltaAdsClientOptions,
  type XdsChanges,
  type XdsNackInfo,
  type XdsResourceHandler,
} from "./delta-client.js";
export {
  type AckEvent,
  addDeltaAdsService,
  type DeltaAdsHooks,
  DeltaAdsServer,
  type DeltaAdsServerOptions,
  type NackEvent,
  type XdsClientInfo,
  type XdsSubscriptionInfo,
} from "./delta-server.js";
export { ADS_SERVICE_NAME, CA_SERVICE_NAME, type LoadedProtos, protoDir, protos } from "./proto.js";
export {
  type ResourceBatch,
  ResourceStore,
  resourceVersion,
  type StoreChange,
  type StoreListener,
  type VersionedResource,
} from "./resource-store.js";
export * from "./types.js";
export {
  decodeL7Resource,
  encodeL7Resource,
  L7_RESOURCE_TYPE_URL,
  type L7Resource,
  l7ResourceName,
} from "./waypoint-config.js";
export {
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  nodeFromWire,
  nodeToWire,
  structFromJson,
  structToJson,
  type WireAny,
  type WireNode,
  type WireResource,
  type WireStatus,
  type WireStruct,
  type WireValue,
  type XdsNode,
} from "./wire.js";
