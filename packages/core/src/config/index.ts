export * from "./config.js";
export * from "./version.js";
