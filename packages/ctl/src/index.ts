// @ambient/ctl: the ambientctl command line.
export { run } from "./cli.js";
