// Kubernetes mode without a plugged-in CA: the self-signed root lives in the Secret
// `istio-ca-secret` in the control plane's namespace, as istiod keeps it. The pod's state folder is
// an emptyDir, so a root kept there would change on every restart or upgrade, and each replica
// would have its own: workloads holding certificates from the old root could no longer talk to
// those with new ones. The first replica creates the Secret; every other one (and every restart)
// reads it. Istio's layout is kept, so a cluster moving from istiod keeps its root, and back.

import {
  type CaMaterial,
  type CaSources,
  CertificateAuthority,
  type CertificateAuthorityOptions,
  errorMessage,
  type Logger,
} from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { apiStatusOf, getJson, type KubeConfig, requestJson } from "@ambient/kube/api";

export const CA_SECRET_NAME = "istio-ca-secret";
/** The Secret type istiod gives its self-signed root. */
const CA_SECRET_TYPE = "istio.io/ca-root";
const KEYS = {
  caCert: "ca-cert.pem",
  caKey: "ca-key.pem",
  certChain: "cert-chain.pem",
  rootCert: "root-cert.pem",
} as const;

interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

/** The CA from `<namespace>/istio-ca-secret`, created with a new self-signed root if absent. */
export async function loadOrCreateCaSecret(
  kc: KubeConfig,
  namespace: string,
  opts: CertificateAuthorityOptions,
  logger: Logger,
): Promise<CertificateAuthority> {
  const where = `Secret ${namespace}/${CA_SECRET_NAME}`;
  const existing = await readSecret(kc, namespace, where);
  if (existing) {
    logger.info({ secret: where }, "self-signed root loaded from its Secret");
    return fromSecret(existing, namespace, opts);
  }
  const material = await CertificateAuthority.generateSelfSigned(opts);
  try {
    await requestJson(kc, "POST", `/api/v1/namespaces/${namespace}/secrets`, secretOf(material, namespace));
    logger.info({ secret: where }, "new self-signed root created and stored in its Secret");
    return CertificateAuthority.fromPem(material, opts, sourcesOf(where));
  } catch (err) {
    // Another replica created it first: use that one, never ours.
    if (apiStatusOf(err) !== 409) throw caSecretError(where, "create", err);
    const winner = await readSecret(kc, namespace, where);
    if (!winner) throw new Error(`${where}: the API said it exists (409) but reading it found none`);
    logger.info({ secret: where }, "self-signed root loaded from the Secret another replica created");
    return fromSecret(winner, namespace, opts);
  }
}

async function readSecret(kc: KubeConfig, namespace: string, where: string): Promise<Secret | undefined> {
  try {
    return await getJson<Secret>(kc, `/api/v1/namespaces/${namespace}/secrets/${CA_SECRET_NAME}`);
  } catch (err) {
    if (apiStatusOf(err) === 404) return undefined;
    throw caSecretError(where, "read", err);
  }
}

function fromSecret(
  secret: Secret,
  namespace: string,
  opts: CertificateAuthorityOptions,
): Promise<CertificateAuthority> {
  const where = `Secret ${namespace}/${CA_SECRET_NAME}`;
  const text = (key: string): string | undefined => {
    const b64 = secret.data?.[key];
    // istiod writes cert-chain.pem and root-cert.pem empty for a self-signed root: absent here.
    if (b64 === undefined || b64 === "") return undefined;
    return Buffer.from(b64, "base64").toString("utf8");
  };
  const caCertPem = text(KEYS.caCert);
  const caKeyPem = text(KEYS.caKey);
  // Never replace a Secret we cannot read: a new root would cut off every workload of the old one.
  if (!caCertPem || !caKeyPem)
    throw new Error(
      `${where} has no ${caCertPem ? KEYS.caKey : KEYS.caCert}; fix or delete the Secret (deleting it makes a new root: restart every workload afterwards)`,
    );
  const material: CaMaterial = { caCertPem, caKeyPem };
  const rootCertPem = text(KEYS.rootCert);
  const certChainPem = text(KEYS.certChain);
  if (rootCertPem) material.rootCertPem = rootCertPem;
  if (certChainPem) material.certChainPem = certChainPem;
  return CertificateAuthority.fromPem(material, opts, sourcesOf(where));
}

/** As istiod writes it: the root and its key; the chain and root entries empty (self-signed). */
function secretOf(material: CaMaterial, namespace: string): Secret {
  const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: CA_SECRET_NAME, namespace },
    type: CA_SECRET_TYPE,
    data: {
      [KEYS.caCert]: b64(material.caCertPem),
      [KEYS.caKey]: b64(material.caKeyPem),
      [KEYS.certChain]: "",
      [KEYS.rootCert]: "",
    },
  };
}

function sourcesOf(where: string): CaSources {
  return {
    caCert: `${where} key ${KEYS.caCert}`,
    caKey: `${where} key ${KEYS.caKey}`,
    rootCert: `${where} key ${KEYS.rootCert}`,
    certChain: `${where} key ${KEYS.certChain}`,
  };
}

function caSecretError(where: string, verb: "read" | "create", err: unknown): Error {
  const status = apiStatusOf(err);
  const namespace = where.slice("Secret ".length, where.indexOf("/"));
  const hint =
    status === 401 || status === 403
      ? " (the control plane's ServiceAccount needs get and create on secrets in its namespace)"
      : status === 404
        ? ` (namespace ${namespace} must exist: the control plane runs in it)`
        : "";
  return new Error(
    `cannot ${verb} ${where}, where the self-signed root is kept${hint}: ${errorMessage(err)}`,
    {
      cause: err,
    },
  );
}
