// Kubernetes mode's identity rules, as istiod's CA applies them. Without ImpersonatedIdentity a
// caller gets only its own service account's identity (a waypoint). With it (a node proxy): the
// caller's account must be a trusted node account, its token bound to a pod that exists with that
// uid and account, and a pod with the requested identity must run on that pod's node. Pods come
// from the object source, indexed as each publish changes them: no API call per request.

import { AmbientError, SpiffeId } from "@ambient/core";
import { type KubeObject, namespaceOf, type Pod } from "@ambient/kube";
import type { TranslationChange } from "../translate/index.js";
import type { Caller } from "./authenticator.js";
import { describeCaller, type IdentityAuthorizer } from "./authorizer.js";
import { CaErrorCode } from "./errors.js";

interface IndexedPod {
  uid: string | undefined;
  serviceAccount: string;
  node: string | undefined;
}

/** A pod as indexed, with what is needed to take it out again. */
interface Entry extends IndexedPod {
  ref: string;
  /** Its SPIFFE ID when it counts as running on `node` (scheduled, not finished). */
  identity: string | undefined;
}

/**
 * Every pod by `ns/name`, and per node the identities of the pods that run there. Kept up to date
 * from each translation's change (`update`): a pod edit touches its own entry, not the mesh.
 */
export class PodIndex {
  /** objectKey → entry: a deleted pod is found by its key alone. */
  private readonly byKey = new Map<string, Entry>();
  private readonly pods = new Map<string, Entry>();
  /** node → identity → how many pods run there with it (several replicas share an identity). */
  private readonly byNode = new Map<string, Map<string, number>>();
  private generation = 0;

  constructor(private readonly trustDomain: string) {}

  /**
   * Follows one translation: only the changed keys when this index saw the translation before it,
   * else a rebuild from every object (the first translation, or one missed after a failed publish).
   */
  update(change: TranslationChange): void {
    const incremental = change.keys !== undefined && change.generation === this.generation + 1;
    this.generation = change.generation;
    if (!incremental) {
      this.byKey.clear();
      this.pods.clear();
      this.byNode.clear();
      for (const [key, o] of change.objects) this.put(key, o);
      return;
    }
    for (const key of change.keys!) {
      this.remove(key);
      const o = change.objects.get(key);
      if (o) this.put(key, o);
    }
  }

  pod(namespace: string, name: string): IndexedPod | undefined {
    return this.pods.get(`${namespace}/${name}`);
  }

  runsOn(node: string, identity: string): boolean {
    return (this.byNode.get(node)?.get(identity) ?? 0) > 0;
  }

  private put(key: string, o: KubeObject): void {
    if (o.kind !== "Pod" || o.apiVersion !== "v1") return;
    this.remove(key); // the same key twice: the last definition is used
    const pod = o as Pod;
    const namespace = namespaceOf(pod);
    const spec = pod.spec ?? {};
    const serviceAccount = spec.serviceAccountName || spec.serviceAccount || "default";
    const node = spec.nodeName || undefined;
    // A finished pod needs no certificate; one not yet scheduled runs nowhere.
    const phase = pod.status?.phase;
    const runs = node !== undefined && phase !== "Succeeded" && phase !== "Failed";
    const entry: Entry = {
      uid: pod.metadata.uid,
      serviceAccount,
      node,
      ref: `${namespace}/${pod.metadata.name}`,
      identity: runs
        ? SpiffeId.format({ trustDomain: this.trustDomain, namespace, serviceAccount })
        : undefined,
    };
    this.byKey.set(key, entry);
    this.pods.set(entry.ref, entry);
    if (!entry.identity) return;
    let ids = this.byNode.get(node!);
    if (!ids) {
      ids = new Map();
      this.byNode.set(node!, ids);
    }
    ids.set(entry.identity, (ids.get(entry.identity) ?? 0) + 1);
  }

  private remove(key: string): void {
    const entry = this.byKey.get(key);
    if (!entry) return;
    this.byKey.delete(key);
    if (this.pods.get(entry.ref) === entry) this.pods.delete(entry.ref);
    if (!entry.identity) return;
    const ids = this.byNode.get(entry.node!)!;
    const left = ids.get(entry.identity)! - 1;
    if (left > 0) ids.set(entry.identity, left);
    else {
      ids.delete(entry.identity);
      if (ids.size === 0) this.byNode.delete(entry.node!);
    }
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
