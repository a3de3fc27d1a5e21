// PeerAuthentication → L4 DENY policies, following Istio's ambient translation
// (pilot/.../ambient/authorization.go). STRICT means "deny peers without a mesh identity": one
// static policy, `<root>/istio_converted_static_strict`, that each strict workload references,
// plus `<ns>/converted_peer_authentication_<name>` for workload policies with port exceptions.

import type { Authorization, Match, Rule } from "@ambient/core";
import { emptyMatch } from "@ambient/core";
import { type MtlsMode, namespaceOf, type PeerAuthentication } from "@ambient/kube";
import { compareStrings, type TranslateContext } from "./context.js";
import { SelectorIndex } from "./selector-index.js";

// Underscores are illegal in Kubernetes names, so these can never collide with a user's policy.
export const STATIC_STRICT_POLICY_NAME = "istio_converted_static_strict";
export const CONVERTED_PEER_AUTHENTICATION_PREFIX = "converted_peer_authentication_";

function modeOf(policy: PeerAuthentication | undefined): MtlsMode {
  return policy?.spec?.mtls?.mode ?? "UNSET";
}

/** Istio picks the oldest policy when several apply at one level; names break ties for stable output. */
function older(a: PeerAuthentication, b: PeerAuthentication): boolean {
  const ta = a.metadata.creationTimestamp ?? "";
  const tb = b.metadata.creationTimestamp ?? "";
  if (ta !== tb) return ta < tb;
  return compareStrings(a.metadata.name, b.metadata.name) < 0;
}

function denyWithoutIdentity(extra: Partial<Match> = {}): Match {
  return { ...emptyMatch(), notPrincipals: [{ presence: {} }], ...extra };
}

export class PeerAuthenticationIndex {
  private mesh: PeerAuthentication | undefined;
  private readonly byNamespace = new Map<string, PeerAuthentication>();
  private readonly selectors = new SelectorIndex<PeerAuthentication>();
  private readonly converted = new Map<PeerAuthentication, Authorization>();
  private readonly hasAny: boolean;

  constructor(
    policies: readonly PeerAuthentication[],
    private readonly ctx: TranslateContext,
  ) {
    const root = ctx.options.rootNamespace;
    this.hasAny = policies.length > 0;
    for (const p of policies) {
      const ns = namespaceOf(p);
      const labels = p.spec?.selector?.matchLabels ?? {};
      if (Object.keys(labels).length === 0) {
        if (ns === root) {
          if (!this.mesh || older(p, this.mesh)) this.mesh = p;
        } else {
          const current = this.byNamespace.get(ns);
          if (!current || older(p, current)) this.byNamespace.set(ns, p);
        }
      } else if (ns !== root) {
        // Istio ignores workload selectors in the root namespace for ambient.
        this.selectors.add(ns, labels, p);
      } else {
        ctx.warn(p, "a PeerAuthentication with a selector in the root namespace is ignored in ambient mode");
      }
    }
    for (const p of policies) {
      const auth = this.convert(p);
      if (auth) this.converted.set(p, auth);
    }
  }

  /** The mode a namespace's workloads inherit: namespace policy unless UNSET, then the mesh's. */
  private inheritedStrict(namespace: string): boolean {
    const ns = this.byNamespace.get(namespace);
    if (ns && modeOf(ns) !== "UNSET") return modeOf(ns) === "STRICT";
    return modeOf(this.mesh) === "STRICT";
  }

  private effectiveStrict(policy: PeerAuthentication): boolean {
    const mode = modeOf(policy);
    return mode === "UNSET" ? this.inheritedStrict(namespaceOf(policy)) : mode === "STRICT";
  }

  /**
   * A workload policy with port-level exceptions. Under an effective STRICT mode, relaxed ports
   * are carved out: deny when no identity AND port not p1 AND not p2 (one clause each, as Istio).
   * Under PERMISSIVE, each STRICT port gets its own rule denying identity-less peers on it.
   * Ports that agree with the workload's mode need nothing, and then neither does the policy.
   * "Effective" is the documented precedence (workload, else namespace, else mesh; UNSET
   * inherits). Istio's Go code slips in two corners (a STRICT mesh over an UNSET namespace, and a
   * PERMISSIVE workload under a STRICT mesh); we follow the documented rule there.
   */
  private convert(policy: PeerAuthentication): Authorization | undefined {
    const ns = namespaceOf(policy);
    const labels = policy.spec?.selector?.matchLabels ?? {};
    const portLevel = policy.spec?.portLevelMtls ?? {};
    if (ns === this.ctx.options.rootNamespace || Object.keys(labels).length === 0) return undefined;

    const strict = this.effectiveStrict(policy);
    const ports = Object.entries(portLevel)
      .map(([port, setting]) => ({ port: Number(port), mode: setting?.mode ?? "UNSET" }))
      .filter((p) => Number.isInteger(p.port) && p.port > 0 && p.port <= 65535)
      .sort((a, b) => a.port - b.port);

    let rules: Rule[];
    if (strict) {
      const relaxed = ports.filter((p) => p.mode === "PERMISSIVE" || p.mode === "DISABLE");
      if (relaxed.length === 0) return undefined;
      rules = [
        {
          clauses: [
            { matches: [denyWithoutIdentity()] },
            ...relaxed.map((p) => ({ matches: [{ ...emptyMatch(), notDestinationPorts: [p.port] }] })),
          ],
        },
      ];
    } else {
      const strictPorts = ports.filter((p) => p.mode === "STRICT");
      if (strictPorts.length === 0) return undefined;
      rules = strictPorts.map((p) => ({
        clauses: [{ matches: [denyWithoutIdentity({ destinationPorts: [p.port] })] }],
      }));
    }
    return {
      name: CONVERTED_PEER_AUTHENTICATION_PREFIX + policy.metadata.name,
      namespace: ns,
      scope: "WORKLOAD_SELECTOR",
      action: "DENY",
      rules,
      dryRun: false,
    };
  }

  /** The static STRICT policy (sent whenever any PeerAuthentication exists) and the converted ones. */
  authorizations(): Authorization[] {
    const out = [...this.converted.values()];
    if (this.hasAny) {
      out.push({
        name: STATIC_STRICT_POLICY_NAME,
        namespace: this.ctx.options.rootNamespace,
        scope: "WORKLOAD_SELECTOR",
        action: "DENY",
        rules: [{ clauses: [{ matches: [denyWithoutIdentity()] }] }],
        dryRun: false,
      });
    }
    return out;
  }

  /**
   * Policy keys a workload (a Pod or WorkloadEntry with these labels in namespace `ns`)
   * references. Precedence: the oldest selector policy in its namespace, else the namespace-wide
   * policy, else the mesh-wide one; UNSET inherits from the next level.
   */
  policiesFor(ns: string, labels: Record<string, string>): string[] {
    if (!this.hasAny) return [];
    let workload: PeerAuthentication | undefined;
    for (const p of this.selectors.match(ns, labels)) {
      if (!workload || older(p, workload)) workload = p;
    }
    const converted = workload && this.converted.get(workload);
    if (converted) return [`${converted.namespace}/${converted.name}`];
    const strict = workload ? this.effectiveStrict(workload) : this.inheritedStrict(ns);
    return strict ? [`${this.ctx.options.rootNamespace}/${STATIC_STRICT_POLICY_NAME}`] : [];
  }
}
