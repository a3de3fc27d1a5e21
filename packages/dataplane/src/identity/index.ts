// Workload certificates for the pods on this node: CA requests, verification, rotation.
export {
  CertificateManager,
  type CertificateManagerOptions,
} from "./certificate-manager.js";
