// @ambient/controlplane: manifests (or Kubernetes) → Istio workload xDS over Delta ADS, plus the CA.
export { LocalTokenAuthenticator } from "./ca/authenticator.js";
export { DEFAULT_CERT_TTL_SECONDS, IMPERSONATED_IDENTITY_KEY } from "./ca/ca-service.js";
export { CONTROLPLANE_OPTIONS, type ControlPlaneConfig, parseControlPlaneConfig } from "./config.js";
export { AddressAllocator, internalIp } from "./local/address-allocator.js";
export { SYNTHESIZED_ANNOTATION, synthesizeWaypoints } from "./local/waypoint-pods.js";
export { main } from "./main.js";
export { ControlPlane, type ControlPlaneOptions, type PublishedListener } from "./server/controlplane.js";
export { type TranslateResult, translate } from "./translate/index.js";
export { validateObject } from "./validate/index.js";
