// Service-account tokens as kube-apiserver issues and reviews them: ES256 JWTs with the
// `kubernetes.io` claim (namespace, service account, bound pod and its node), audiences, expiry.
// A token stays valid only while the objects it names still exist with the same uid, which is
// what lets Istio's CA trust `authentication.kubernetes.io/pod-name` and `pod-uid`.

import { randomUUID, type webcrypto } from "node:crypto";
import { exportJWK, generateKeyPair, type JWK, jwtVerify, SignJWT } from "jose";
import { ApiErrorCode, apiError, invalid, notFound } from "./errors.js";
import type { KubeObject } from "./store.js";

/** kube-apiserver's default --service-account-issuer and --api-audiences on kubeadm clusters (the same URL). */
export const ISSUER = "https://kubernetes.default.svc.cluster.local";
const API_AUDIENCE = ISSUER;
/** TokenRequest: 1 h by default, 10 min at least (ValidateTokenRequest). */
export const DEFAULT_TOKEN_SECONDS = 3600;
export const MIN_TOKEN_SECONDS = 600;

export type Lookup = (
  kind: "Pod" | "ServiceAccount" | "Node" | "Secret",
  ns: string | undefined,
  name: string,
) => KubeObject | undefined;

interface KubernetesClaim {
  namespace: string;
  serviceaccount: { name: string; uid: string };
  pod?: { name: string; uid: string };
  node?: { name: string; uid: string };
}

export interface ReviewedUser {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export class TokenIssuer {
  private constructor(
    private readonly privateKey: webcrypto.CryptoKey,
    private readonly publicKey: webcrypto.CryptoKey,
    private readonly kid: string,
  ) {}

  static async create(): Promise<TokenIssuer> {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    return new TokenIssuer(privateKey, publicKey, randomUUID());
  }

  /** The /openid/v1/jwks document (service-account issuer discovery). */
  async jwks(): Promise<{ keys: JWK[] }> {
    return { keys: [{ ...(await exportJWK(this.publicKey)), kid: this.kid, use: "sig", alg: "ES256" }] };
  }

  /** POST serviceaccounts/<sa>/token: validates the TokenRequest and answers it with a token. */
  async request(sa: KubeObject, body: unknown, lookup: Lookup): Promise<KubeObject> {
    const spec = ((body as { spec?: Record<string, unknown> } | undefined)?.spec ?? {}) as {
      audiences?: string[];
      expirationSeconds?: number;
      boundObjectRef?: { kind?: string; apiVersion?: string; name?: string; uid?: string };
    };
    const ns = sa.metadata.namespace!;
    const seconds = spec.expirationSeconds ?? DEFAULT_TOKEN_SECONDS;
    if (!Number.isInteger(seconds) || seconds < MIN_TOKEN_SECONDS) {
      throw invalid("TokenRequest", sa.metadata.name!, [
        {
          field: "spec.expirationSeconds",
          message: `Invalid value: ${seconds}: may not specify a duration less than 10 minutes`,
        },
      ]);
    }
    const audiences = spec.audiences && spec.audiences.length > 0 ? spec.audiences : [API_AUDIENCE];
    const claim: KubernetesClaim = {
      namespace: ns,
      serviceaccount: { name: sa.metadata.name!, uid: sa.metadata.uid! },
    };
    const ref = spec.boundObjectRef;
    if (ref) {
      if (ref.kind !== "Pod" && ref.kind !== "Secret" && ref.kind !== "Node") {
        throw invalid("TokenRequest", sa.metadata.name!, [
          {
            field: "spec.boundObjectRef.kind",
            message: `Unsupported value: "${ref.kind}": supported values: "Pod", "Secret", "Node"`,
          },
        ]);
      }
      const bound = lookup(ref.kind, ref.kind === "Node" ? undefined : ns, ref.name ?? "");
      if (!bound) throw notFound(`${ref.kind.toLowerCase()}s`, "", ref.name ?? "");
      if (ref.uid && ref.uid !== bound.metadata.uid) {
        throw apiError(
          ApiErrorCode.CONFLICT,
          `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
        );
      }
      const who = { name: bound.metadata.name!, uid: bound.metadata.uid! };
      if (ref.kind === "Pod") {
        claim.pod = who;
        const nodeName = (bound.spec as { nodeName?: string } | undefined)?.nodeName;
        const node = nodeName ? lookup("Node", undefined, nodeName) : undefined;
        if (node) claim.node = { name: nodeName!, uid: node.metadata.uid! };
      } else if (ref.kind === "Node") claim.node = who;
    }
    const issuedAt = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ "kubernetes.io": claim })
      .setProtectedHeader({ alg: "ES256", kid: this.kid })
      .setIssuer(ISSUER)
      .setSubject(`system:serviceaccount:${ns}:${sa.metadata.name}`)
      .setAudience(audiences)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + seconds)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      metadata: {
        name: sa.metadata.name!,
        namespace: ns,
        creationTimestamp: new Date(issuedAt * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      },
      spec: { ...spec, audiences, expirationSeconds: seconds },
      status: {
        token,
        expirationTimestamp: new Date((issuedAt + seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      },
    };
  }

  /**
   * Verifies a token for `audiences` (the API audience when none are given). Throws with the
   * reason on any failure; the caller decides between 401 and a TokenReview `error`.
   */
  async verify(
    token: string,
    audiences: string[],
    lookup: Lookup,
  ): Promise<{ user: ReviewedUser; audiences: string[] }> {
    const wanted = audiences.length > 0 ? audiences : [API_AUDIENCE];
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.publicKey, { issuer: ISSUER, algorithms: ["ES256"] }));
    } catch (err) {
      throw apiError(ApiErrorCode.UNAUTHORIZED, `invalid bearer token: ${(err as Error).message}`, {}, err);
    }
    const tokenAud = ([] as string[]).concat((payload.aud as string | string[] | undefined) ?? []);
    const matched = wanted.filter((a) => tokenAud.includes(a));
    if (matched.length === 0)
      throw apiError(ApiErrorCode.UNAUTHORIZED, "invalid bearer token: token audiences do not match");
    const claim = payload["kubernetes.io"] as KubernetesClaim | undefined;
    if (!claim) throw apiError(ApiErrorCode.UNAUTHORIZED, "invalid bearer token: no kubernetes.io claim");
    const sa = lookup("ServiceAccount", claim.namespace, claim.serviceaccount.name);
    if (!sa || sa.metadata.uid !== claim.serviceaccount.uid) {
      throw apiError(
        ApiErrorCode.UNAUTHORIZED,
        `invalid bearer token: service account ${claim.namespace}/${claim.serviceaccount.name} has been deleted`,
      );
    }
    const extra: Record<string, string[]> = {
      "authentication.kubernetes.io/credential-id": [`JTI=${payload.jti}`],
    };
    if (claim.pod) {
      const pod = lookup("Pod", claim.namespace, claim.pod.name);
      if (!pod || pod.metadata.uid !== claim.pod.uid) {
        throw apiError(
          ApiErrorCode.UNAUTHORIZED,
          `invalid bearer token: pod ${claim.namespace}/${claim.pod.name} has been deleted`,
        );
      }
      extra["authentication.kubernetes.io/pod-name"] = [claim.pod.name];
      extra["authentication.kubernetes.io/pod-uid"] = [claim.pod.uid];
    }
    if (claim.node) {
      extra["authentication.kubernetes.io/node-name"] = [claim.node.name];
      extra["authentication.kubernetes.io/node-uid"] = [claim.node.uid];
    }
    return {
      audiences: matched,
      user: {
        username: `system:serviceaccount:${claim.namespace}:${claim.serviceaccount.name}`,
        uid: claim.serviceaccount.uid,
        groups: [
          "system:serviceaccounts",
          `system:serviceaccounts:${claim.namespace}`,
          "system:authenticated",
        ],
        extra,
      },
    };
  }

  /** POST tokenreviews: a failed review is `authenticated: false` with `error`, not an HTTP error. */
  async review(body: unknown, lookup: Lookup): Promise<KubeObject> {
    const spec = ((body as { spec?: { token?: string; audiences?: string[] } } | undefined)?.spec ?? {}) as {
      token?: string;
      audiences?: string[];
    };
    if (!spec.token) throw invalid("TokenReview", "", [{ field: "spec.token", message: "Required value" }]);
    let status: Record<string, unknown>;
    try {
      const { user, audiences } = await this.verify(spec.token, spec.audiences ?? [], lookup);
      status = { authenticated: true, user, audiences };
    } catch (err) {
      status = { authenticated: false, user: {}, error: (err as Error).message };
    }
    return {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      metadata: { creationTimestamp: null } as never,
      spec,
      status,
    };
  }
}
