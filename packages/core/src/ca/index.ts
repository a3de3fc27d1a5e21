// The mesh CA and workload certificates: CSRs, signing, chain verification, and test hierarchies.
export {
  CertificateAuthority,
  type CertificateAuthorityOptions,
  type WorkloadCertificate,
} from "./authority.js";
export type { CaMaterial, CaSources } from "./ca-files.js";
export { describeCertificate } from "./certificate-info.js";
export {
  createWorkloadCsr,
  validateWorkloadCsr,
} from "./csr.js";
export { verifyWorkloadChain } from "./verify.js";
