export * from "./classify.js";
export * from "./codes.js";
export * from "./errors.js";
