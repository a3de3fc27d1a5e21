// @ambient/core/testing: test certificate hierarchies and a Delta ADS server for other packages'
// tests. A subpath of its own so that no production entry point carries test code.
export {
  createTestRoot,
  TestCa,
  testIdentity,
} from "./ca/testing.js";
export { eventually } from "./time/eventually.js";
export { RawDeltaStream, type RunningAdsServer, startAdsServer } from "./xds/testing.js";
