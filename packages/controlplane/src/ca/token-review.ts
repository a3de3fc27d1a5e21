// Kubernetes mode's CallerAuthenticator: the caller's bearer token is sent to the API server as a
// TokenReview for audience `istio-ca` (what istiod does), with the control plane's own credentials.
// An authenticated service account comes back, with the pod its token is bound to when it is.

import { AmbientError } from "@ambient/core";
import { type KubeConfig, requestJson } from "@ambient/kube/api";
import type { Caller, CallerAuthenticator } from "./authenticator.js";
import { CaErrorCode } from "./errors.js";

/** The audience Istio's proxies request their projected token for (`istio-token`). */
export const CA_AUDIENCE = "istio-ca";
const SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts";
const SA_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;
const POD_NAME = "authentication.kubernetes.io/pod-name";
const POD_UID = "authentication.kubernetes.io/pod-uid";
const TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews";

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; groups?: string[]; extra?: Record<string, string[]> };
}

export class TokenReviewAuthenticator implements CallerAuthenticator {
  constructor(private readonly kc: KubeConfig) {}

  async authenticate(bearerToken: string | undefined): Promise<Caller> {
    if (!bearerToken) {
      throw new AmbientError(
        CaErrorCode.TOKEN_MISSING,
        `no bearer token: send \`authorization: Bearer <service-account token for audience ${CA_AUDIENCE}>\``,
      );
    }
    let status: TokenReviewStatus;
    try {
      const review = await requestJson<{ status?: TokenReviewStatus }>(this.kc, "POST", TOKEN_REVIEWS, {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token: bearerToken, audiences: [CA_AUDIENCE] },
      });
      status = review.status ?? {};
    } catch (err) {
      throw new AmbientError(
        CaErrorCode.TOKEN_REVIEW_FAILED,
        `cannot review the token with the Kubernetes API server (try again): ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (!status.authenticated) {
      throw new AmbientError(
        CaErrorCode.TOKEN_REJECTED,
        `the Kubernetes API server did not authenticate the token: ${status.error || "no reason given"}`,
      );
    }
    // An API server that ignores spec.audiences (old or misconfigured) answers without them.
    if (!status.audiences?.includes(CA_AUDIENCE)) {
      throw new AmbientError(
        CaErrorCode.TOKEN_REJECTED,
        `the token is not for audience ${CA_AUDIENCE} (reviewed audiences: ${JSON.stringify(status.audiences ?? [])})`,
      );
    }
    const user = status.user ?? {};
    const m = SA_USER.exec(user.username ?? "");
    if (!m || !user.groups?.includes(SERVICE_ACCOUNTS_GROUP)) {
      throw new AmbientError(
        CaErrorCode.NOT_SERVICE_ACCOUNT,
        `"${user.username ?? ""}" is not a Kubernetes service account (user system:serviceaccount:<ns>:<sa> in group ${SERVICE_ACCOUNTS_GROUP})`,
      );
    }
    const podName = user.extra?.[POD_NAME]?.[0];
    const podUid = user.extra?.[POD_UID]?.[0];
    return {
      kind: "serviceaccount",
      namespace: m[1]!,
      serviceAccount: m[2]!,
      ...(podName && podUid ? { pod: { name: podName, uid: podUid } } : {}),
    };
  }
}
