// Ingress gateways: what the control plane sends the gateway proxies (the waypoint binary run with
// `--ingress`). Two APIs describe one: Istio's Gateway (servers for the pods its selector matches,
// in any namespace, as istiod's default scope) and a Gateway API Gateway of class `istio` (served
// by the pods labelled gateway.networking.k8s.io/gateway-name=<name> in its namespace). Both go
// to the gateways as written; each gateway picks its own by its pod's labels. With them go the
// TLS Secrets their servers name, and the selector AuthorizationPolicies that can select a gateway
// pod: a gateway pod is not captured by ztunnel, so the gateway enforces those itself.

import {
  type AuthorizationPolicy,
  type Gateway,
  type KubeObject,
  matchesLabelSelector,
  namespaceOf,
  type Pod,
  type Secret,
} from "@ambient/kube";
import type { TranslateContext } from "./context.js";
import type { Snapshot } from "./snapshot.js";
import { GATEWAY_NAME_LABEL } from "./waypoints.js";

/** Istio's GatewayClass for ingress (and egress) gateways it deploys. */
export const INGRESS_CLASS = "istio";

export function isIngressGateway(obj: Gateway): boolean {
  return obj.spec?.gatewayClassName === INGRESS_CLASS;
}

export interface IngressConfig {
  /** Istio Gateways with at least one pod to serve them, and every Gateway of class istio. */
  gateways: KubeObject[];
  /** The Secrets those gateways name, found: published to the proxies of their own namespace only. */
  secrets: Secret[];
  /** Policies without targetRefs in a gateway pod's namespace or the root namespace. */
  policies: AuthorizationPolicy[];
}

interface CertificateRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

export function translateIngress(
  snapshot: Pick<Snapshot, "istioGateways" | "gateways" | "pods" | "secrets" | "authorizationPolicies">,
  ctx: TranslateContext,
): IngressConfig {
  const gateways: KubeObject[] = [];
  const secrets = new Map<string, Secret>();
  const podNamespaces = new Set<string>();
  const wantSecret = (owner: KubeObject, ns: string, name: string, where: string) => {
    const key = `${ns}/${name}`;
    const secret = snapshot.secrets.get(key);
    if (!secret) {
      ctx.warn(owner, `${where}: Secret ${key} not found; the server refuses TLS handshakes until it exists`);
      return;
    }
    if (secret.type !== undefined && secret.type !== "kubernetes.io/tls" && secret.type !== "Opaque")
      ctx.warn(owner, `${where}: Secret ${key} has type ${secret.type}; expected kubernetes.io/tls`);
    secrets.set(key, secret);
  };

  for (const gw of snapshot.istioGateways) {
    const selector = gw.spec?.selector ?? {};
    const pods = snapshot.pods.filter((p) => servesIstioGateway(p, selector));
    if (pods.length === 0) {
      ctx.warn(gw, `no pod matches selector ${JSON.stringify(selector)}; nothing serves this Gateway`);
      continue;
    }
    gateways.push(gw);
    const namespaces = new Set(pods.map((p) => namespaceOf(p)));
    for (const ns of namespaces) podNamespaces.add(ns);
    (gw.spec?.servers ?? []).forEach((server, i) => {
      const name = server.tls?.credentialName;
      if (!name || (server.tls?.mode ?? "SIMPLE") !== "SIMPLE") return;
      // Istio reads credentialName in the namespace of the gateway's pods, not the Gateway's.
      for (const ns of namespaces) wantSecret(gw, ns, name, `spec.servers[${i}].tls.credentialName`);
    });
  }

  for (const gw of snapshot.gateways) {
    if (!isIngressGateway(gw)) continue;
    gateways.push(gw);
    const ns = namespaceOf(gw);
    podNamespaces.add(ns);
    (gw.spec?.listeners ?? []).forEach((listener, i) => {
      const tls = listener["tls"] as { mode?: string; certificateRefs?: CertificateRef[] } | undefined;
      if (!tls || (tls.mode ?? "Terminate") !== "Terminate") return;
      (tls.certificateRefs ?? []).forEach((ref, j) => {
        const where = `spec.listeners[${i}].tls.certificateRefs[${j}]`;
        if ((ref.kind ?? "Secret") !== "Secret" || (ref.group ?? "") !== "") {
          ctx.warn(gw, `${where}: only Secrets are supported`);
          return;
        }
        if (ref.namespace !== undefined && ref.namespace !== ns) {
          // Cross-namespace references need a ReferenceGrant, which Ambient does not read yet.
          ctx.warn(
            gw,
            `${where}: Secret ${ref.namespace}/${ref.name} is in another namespace (ReferenceGrant is not supported); refused`,
          );
          return;
        }
        if (ref.name) wantSecret(gw, ns, ref.name, where);
      });
    });
  }

  const root = ctx.options.rootNamespace;
  const policies = snapshot.authorizationPolicies.filter((p) => {
    const spec = (p.spec ?? {}) as { targetRef?: unknown; targetRefs?: unknown[] };
    if (spec.targetRef || (spec.targetRefs?.length ?? 0) > 0) return false;
    const ns = namespaceOf(p);
    return ns === root || podNamespaces.has(ns);
  });

  return {
    gateways,
    secrets: [...secrets.values()].sort((a, b) =>
      `${namespaceOf(a)}/${a.metadata.name}`.localeCompare(`${namespaceOf(b)}/${b.metadata.name}`),
    ),
    policies,
  };
}

/** An Istio Gateway's selector picks pods in every namespace; an empty one picks none we run. */
function servesIstioGateway(pod: Pod, selector: Record<string, string>): boolean {
  if (Object.keys(selector).length === 0) return false;
  if (pod.metadata.labels?.[GATEWAY_NAME_LABEL]) return false; // a waypoint or class-istio pod
  return matchesLabelSelector({ matchLabels: selector }, pod.metadata.labels);
}
