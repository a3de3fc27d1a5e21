// Which identities a caller may hold: the CA's third phase. Local mode: a node's ztunnel may get the
// identities of the pods scheduled on its node (from the translation). Kubernetes mode: Istio's
// rules, in node-authorizer.ts.

import { AmbientError, ErrorCode, type SpiffeId } from "@ambient/core";
import type { Caller } from "./authenticator.js";

export interface IdentityAuthorizer {
  /**
   * Throws a typed refusal naming the rule when `caller` may not hold `identity`. `impersonated`:
   * the request carried ImpersonatedIdentity (a node proxy asking on a pod's behalf).
   */
  authorize(caller: Caller, identity: SpiffeId, impersonated: boolean): void;
}

/** Which identities a node may hold: those of the pods scheduled on it. */
export type NodeIdentities = (node: string) => ReadonlySet<string>;

/** Local mode: node bootstrap tokens, with or without ImpersonatedIdentity. */
export class NodeTokenAuthorizer implements IdentityAuthorizer {
  constructor(private readonly nodeIdentities: NodeIdentities) {}

  authorize(caller: Caller, identity: SpiffeId): void {
    if (caller.kind !== "node") {
      throw new AmbientError(ErrorCode.CSR_FORBIDDEN, `${describeCaller(caller)} is not a node`);
    }
    if (!this.nodeIdentities(caller.node).has(identity.toString())) {
      throw new AmbientError(
        ErrorCode.CSR_FORBIDDEN,
        `node "${caller.node}" runs no pod with identity ${identity}; a ztunnel may only request identities of pods on its node`,
      );
    }
  }
}

/** For log lines: `node node-1`, `system:serviceaccount:istio-system:ztunnel (pod istio-system/ztunnel-x)`. */
export function describeCaller(caller: Caller): string {
  if (caller.kind === "node") return `node ${caller.node}`;
  const user = `system:serviceaccount:${caller.namespace}:${caller.serviceAccount}`;
  return caller.pod ? `${user} (pod ${caller.namespace}/${caller.pod.name})` : user;
}
