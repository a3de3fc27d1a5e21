// Kubernetes mode's identity rules, as istiod's CA applies them. Without ImpersonatedIdentity a
// caller gets only its own service account's identity (a waypoint). With it (a node proxy): the
// caller's account must be a trusted node account, its token bound to a pod that exists with that
// uid and account, and a pod with the requested identity must run on that pod's node. Pods come
// from the object source, indexed once per publish: no API call per request.

import { AmbientError, SpiffeId } from "@ambient/core";
import { type KubeObject, namespaceOf, type Pod } from "@ambient/kube";
import type { Caller } from "./authenticator.js";
import { describeCaller, type IdentityAuthorizer } from "./authorizer.js";
import { CaErrorCode } from "./errors.js";

interface IndexedPod {
  uid: string | undefined;
  serviceAccount: string;
  node: string | undefined;
}

/** Every pod by `ns/name`, and per node the identities of the pods that run there. */
export class PodIndex {
  private constructor(
    private readonly pods: ReadonlyMap<string, IndexedPod>,
    private readonly byNode: ReadonlyMap<string, ReadonlySet<string>>,
  ) {}

  static readonly EMPTY = new PodIndex(new Map(), new Map());

  static build(objects: readonly KubeObject[], trustDomain: string): PodIndex {
    const pods = new Map<string, IndexedPod>();
    const byNode = new Map<string, Set<string>>();
    for (const o of objects) {
      if (o.kind !== "Pod" || o.apiVersion !== "v1") continue;
      const pod = o as Pod;
      const namespace = namespaceOf(pod);
      const spec = pod.spec ?? {};
      const serviceAccount = spec.serviceAccountName || spec.serviceAccount || "default";
      const node = spec.nodeName || undefined;
      pods.set(`${namespace}/${pod.metadata.name}`, { uid: pod.metadata.uid, serviceAccount, node });
      // A finished pod needs no certificate; one not yet scheduled runs nowhere.
      const phase = pod.status?.phase;
      if (!node || phase === "Succeeded" || phase === "Failed") continue;
      let ids = byNode.get(node);
      if (!ids) {
        ids = new Set();
        byNode.set(node, ids);
      }
      ids.add(SpiffeId.format({ trustDomain, namespace, serviceAccount }));
    }
    return new PodIndex(pods, byNode);
  }

  pod(namespace: string, name: string): IndexedPod | undefined {
    return this.pods.get(`${namespace}/${name}`);
  }

  runsOn(node: string, identity: string): boolean {
    return this.byNode.get(node)?.has(identity) ?? false;
  }
}

export class KubeNodeAuthorizer implements IdentityAuthorizer {
  constructor(
    private readonly trustDomain: string,
    /** `ns/sa` (CA_TRUSTED_NODE_ACCOUNTS). */
    private readonly trustedNodeAccounts: ReadonlySet<string>,
    private readonly pods: () => PodIndex,
  ) {}

  authorize(caller: Caller, identity: SpiffeId, impersonated: boolean): void {
    if (caller.kind !== "serviceaccount") {
      throw new AmbientError(
        CaErrorCode.NOT_SERVICE_ACCOUNT,
        `${describeCaller(caller)} is not a service account`,
      );
    }
    const who = describeCaller(caller);
    if (!impersonated) {
      const own = SpiffeId.format({ ...caller, trustDomain: this.trustDomain });
      if (identity.toString() === own) return;
      throw new AmbientError(
        CaErrorCode.NOT_OWN_IDENTITY,
        `${who} may only obtain its own identity ${own}, not ${identity} (node proxies ask with ImpersonatedIdentity)`,
      );
    }
    const account = `${caller.namespace}/${caller.serviceAccount}`;
    if (!this.trustedNodeAccounts.has(account)) {
      throw new AmbientError(
        CaErrorCode.UNTRUSTED_NODE_ACCOUNT,
        `${who} asked for ${identity} with ImpersonatedIdentity, but ${account} is not a trusted node account (CA_TRUSTED_NODE_ACCOUNTS: ${[...this.trustedNodeAccounts].join(",") || "none"})`,
      );
    }
    if (!caller.pod) {
      throw new AmbientError(
        CaErrorCode.TOKEN_NOT_POD_BOUND,
        `the token of ${who} is not bound to a pod: a node proxy must use its projected token (audience istio-ca), which names its pod and so its node`,
      );
    }
    const podRef = `${caller.namespace}/${caller.pod.name}`;
    const pod = this.pods().pod(caller.namespace, caller.pod.name);
    const unknown = (why: string) =>
      new AmbientError(CaErrorCode.CALLER_POD_UNKNOWN, `the caller's pod ${podRef} ${why}`);
    if (!pod) throw unknown("is not known to the control plane (deleted, or not yet seen)");
    if (pod.uid !== caller.pod.uid)
      throw unknown(`has uid ${pod.uid}, the token names ${caller.pod.uid} (the pod was replaced)`);
    if (pod.serviceAccount !== caller.serviceAccount)
      throw unknown(
        `runs as service account ${pod.serviceAccount}, the token is for ${caller.serviceAccount}`,
      );
    if (!pod.node) throw unknown("is not scheduled on a node");
    if (!this.pods().runsOn(pod.node, identity.toString())) {
      throw new AmbientError(
        CaErrorCode.IDENTITY_NOT_ON_NODE,
        `no pod with identity ${identity} runs on node "${pod.node}" (the node of ${podRef}); a node proxy may only request identities of pods on its node`,
      );
    }
  }
}
