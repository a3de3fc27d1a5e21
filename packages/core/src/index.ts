// @ambient/core: what every Ambient binary shares.
export * from "./ca/index.js";
export * from "./config/index.js";
export * from "./drain/drain.js";
export * from "./errors/index.js";
export * from "./hbone/index.js";
export * from "./identity/index.js";
export * from "./inpod/protocol.js";
export * from "./net/ip.js";
export * from "./telemetry/grpc-logs.js";
export * from "./telemetry/logging.js";
export * from "./telemetry/metrics.js";
export * from "./time/timers.js";
export * from "./xds/index.js";
