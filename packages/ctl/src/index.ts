// @ambient/ctl: the ambientctl command line.
export { run } from "./cli.js";
export { fetchMeshView, type MeshView } from "./xds-view.js";
