// @ambient/waypoint: the L7 proxy.
export { parseWaypointConfig } from "./config.js";
export { RETRY_BUFFER_BYTES } from "./proxy/request/body.js";
export { Waypoint } from "./waypoint.js";
