// @ambient/ztunnel: the per-node L4 proxy.
export { parseZtunnelConfig, ZTUNNEL_OPTIONS, type ZtunnelConfig } from "./config.js";
