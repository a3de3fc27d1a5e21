// The waypoint controller of Kubernetes mode: Gateways of class istio-waypoint → ServiceAccount,
// Deployment, Service, and the Gateway's status (controller.ts; objects in desired.ts, status in
// status.ts, the GatewayClass in gateway-class.ts).
export {
  startWaypointController,
  type WaypointController,
} from "./controller.js";
