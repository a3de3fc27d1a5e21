// The control plane connection both proxies share: options (Istio's env names) and the channel.
export { ControlPlaneChannel } from "./channel.js";
export { CONTROL_PLANE_OPTIONS, type ControlPlaneConfig, controlPlaneConfig } from "./options.js";
