// @ambient/controlplane: manifests (or Kubernetes) → Istio workload xDS over Delta ADS, plus the CA.
export { LocalTokenAuthenticator } from "./ca/authenticator.js";
export { parseControlPlaneConfig } from "./config.js";
export { internalIp } from "./local/address-allocator.js";
export { synthesizeWaypoints } from "./local/waypoint-pods.js";
export { ControlPlane } from "./server/controlplane.js";
export { translate } from "./translate/index.js";
export { validateObject } from "./validate/index.js";
export {
  startWaypointController,
  type WaypointController,
} from "./waypoints/index.js";
