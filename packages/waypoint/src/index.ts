// @ambient/waypoint: the L7 proxy.
export { parseWaypointConfig, WAYPOINT_OPTIONS, type WaypointConfig } from "./config.js";
export { RETRY_BUFFER_BYTES } from "./proxy/request/body.js";
export { Waypoint } from "./waypoint.js";
