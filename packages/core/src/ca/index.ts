// The mesh CA and workload certificates: CSRs, signing, chain verification, and test hierarchies.
export {
  CertificateAuthority,
  type WorkloadCertificate,
} from "./authority.js";
export { describeCertificate } from "./certificate-info.js";
export {
  createWorkloadCsr,
  validateWorkloadCsr,
} from "./csr.js";
export { verifyWorkloadChain } from "./verify.js";
