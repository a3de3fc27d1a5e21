// @ambient/dataplane: what both proxies (ztunnel and the waypoint) are made of besides core —
// the workload state fed by xDS, workload certificates from the CA, byte copying between two
// connections, and the node-level admin, metrics and readiness endpoints.

export * from "./admin/admin.js";
export * from "./control-plane/index.js";
export * from "./identity/index.js";
export { awaitConnect } from "./io/connect.js";
export { copyBidirectional, isBenign } from "./io/copy.js";
export { endSocket, endStream } from "./io/end.js";
export * from "./state/index.js";
// Istio's TCP metrics, labels and access-log fields: ztunnel reports them, and the waypoint for opaque TCP.
export * from "./telemetry/access-log.js";
export * from "./telemetry/labels.js";
export * from "./telemetry/metrics.js";
export * from "./xds/index.js";
