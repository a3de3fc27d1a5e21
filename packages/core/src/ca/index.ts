// The mesh CA and workload certificates: CSRs, signing, chain verification, and test hierarchies.
export {
  CertificateAuthority,
  type CertificateAuthorityOptions,
  CLOCK_SKEW_MS,
  DEFAULT_MAX_WORKLOAD_TTL_SECONDS,
  DEFAULT_WORKLOAD_TTL_SECONDS,
  SELF_SIGNED_ROOT_TTL_SECONDS,
  type SignedCertificate,
  type SignOptions,
  type WorkloadCertificate,
} from "./authority.js";
export { CA_CERT_FILE, CA_KEY_FILE, type CaMaterial, CERT_CHAIN_FILE, ROOT_CERT_FILE } from "./ca-files.js";
export { type CertificateDescription, describeCertificate } from "./certificate-info.js";
export {
  type CsrInfo,
  createWorkloadCsr,
  inspectCsr,
  type ValidatedCsr,
  validateWorkloadCsr,
  type WorkloadCsr,
} from "./csr.js";
export { splitCertificatePems } from "./pem.js";
export {
  type VerifiedWorkload,
  type VerifyOptions,
  verifyWorkloadChain,
} from "./verify.js";
