// Workload certificates for the pods on this node: CA requests, verification, rotation.
export {
  CaClient,
  type CaClientOptions,
  CertificateErrorCode,
  IMPERSONATED_IDENTITY,
} from "./ca-client.js";
export {
  CertificateManager,
  type CertificateManagerEvents,
  type CertificateManagerOptions,
  type CertificateState,
  type CertificateStatus,
  DEFAULT_CERT_BACKOFF,
  DEFAULT_CERT_TTL_SECONDS,
  type ManagedCertificate,
} from "./certificate-manager.js";
export { readToken } from "./token.js";
export { type IssuedCertificateFacts, verifyIssuedChain } from "./verify-issued.js";
