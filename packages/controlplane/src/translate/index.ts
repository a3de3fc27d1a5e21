// translate: a consistent set of validated Kubernetes and Istio objects → the workload xDS
// resources ztunnel consumes (Workload, Service, Authorization) plus the objects waypoints
// apply. Pure and deterministic: unchanged input produces byte-identical output.

import type { Authorization, Service, Workload } from "@ambient/core";
import {
  type AuthorizationPolicy,
  type Gateway,
  type KubeObject,
  namespaceOf,
  type Pod,
} from "@ambient/kube";
import { isWaypointPolicy, translateAuthorizationPolicy } from "./authorization.js";
import {
  compareStrings,
  labelsOf,
  TranslateContext,
  type TranslateOptions,
  type Warning,
} from "./context.js";
import { PeerAuthenticationIndex } from "./peer-authentication.js";
import { SelectorIndex } from "./selector-index.js";
import { translateServices } from "./services.js";
import { buildSnapshot } from "./snapshot.js";
import { WaypointIndex } from "./waypoints.js";
import { translateWorkloads } from "./workloads.js";

export type { TranslateOptions, Warning } from "./context.js";

export interface WaypointConfig {
  virtualServices: KubeObject[];
  destinationRules: KubeObject[];
  /** AuthorizationPolicies with targetRef/targetRefs: enforced by waypoints, not ztunnel. */
  authorizationPolicies: KubeObject[];
  requestAuthentications: KubeObject[];
  /** The istio-waypoint Gateways: each waypoint reads its own (listeners, waypoint-for, …). */
  gateways: Gateway[];
}

export interface TranslateResult {
  workloads: Workload[];
  services: Service[];
  authorizations: Authorization[];
  waypointConfig: WaypointConfig;
  warnings: Warning[];
}

export function translate(
  objects: Iterable<KubeObject>,
  options: Partial<TranslateOptions> = {},
): TranslateResult {
  const ctx = new TranslateContext(options);
  const snapshot = buildSnapshot(objects, ctx);
  const root = ctx.options.rootNamespace;

  const authorizations: Authorization[] = [];
  const waypointPolicies: AuthorizationPolicy[] = [];
  // WORKLOAD_SELECTOR policies by namespace; root-namespace ones select pods everywhere.
  const selectorPolicies = new SelectorIndex<string>();
  const rootSelectorPolicies = new SelectorIndex<string>();
  for (const policy of snapshot.authorizationPolicies) {
    if (isWaypointPolicy(policy)) {
      waypointPolicies.push(policy);
      continue;
    }
    const auth = translateAuthorizationPolicy(policy, ctx);
    if (!auth) continue;
    authorizations.push(auth);
    if (auth.scope !== "WORKLOAD_SELECTOR") continue;
    const selector = policy.spec?.selector?.matchLabels ?? {};
    const key = `${auth.namespace}/${auth.name}`;
    if (auth.namespace === root) rootSelectorPolicies.add("", selector, key);
    else selectorPolicies.add(auth.namespace, selector, key);
  }

  const peerAuth = new PeerAuthenticationIndex(snapshot.peerAuthentications, ctx);
  authorizations.push(...peerAuth.authorizations());
  authorizations.sort((a, b) => compareStrings(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));

  // Pods only ever match Services of their own namespace; selector-less Services have no pods.
  const servicesByNamespace = new SelectorIndex<(typeof snapshot.services)[number]>();
  for (const svc of snapshot.services) {
    const selector = svc.spec?.selector ?? {};
    if (Object.keys(selector).length > 0) servicesByNamespace.add(namespaceOf(svc), selector, svc);
  }

  const waypoints = new WaypointIndex(snapshot, ctx);
  const workloads = translateWorkloads(
    snapshot,
    {
      servicesFor: (pod: Pod) => servicesByNamespace.match(namespaceOf(pod), labelsOf(pod)),
      policiesFor: (pod: Pod) => {
        const labels = labelsOf(pod);
        const ns = namespaceOf(pod);
        const keys = new Set([
          ...selectorPolicies.match(ns, labels),
          ...rootSelectorPolicies.match("", labels),
          ...peerAuth.policiesFor(pod),
        ]);
        return [...keys].sort(compareStrings);
      },
      waypointFor: (pod: Pod, serviceAccount: string) => waypoints.forWorkload(pod, serviceAccount),
    },
    ctx,
  );

  // The snapshot is already in object-key order, so these lists are too.
  return {
    workloads,
    services: translateServices(snapshot.services, ctx, (svc) => waypoints.forService(svc)),
    authorizations,
    waypointConfig: {
      virtualServices: snapshot.virtualServices,
      destinationRules: snapshot.destinationRules,
      authorizationPolicies: waypointPolicies,
      requestAuthentications: snapshot.requestAuthentications,
      gateways: waypoints.waypointGateways(),
    },
    warnings: ctx.warnings,
  };
}
