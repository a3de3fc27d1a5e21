// Which Authorizations apply to a destination workload, as ztunnel selects them: GLOBAL policies,
// NAMESPACE policies of the workload's namespace, and the WORKLOAD_SELECTOR policies the control
// plane lists on the workload by key. Built once per policy snapshot; lookups are per connection.

import type { Authorization, Workload } from "@ambient/core";

export type PolicyTarget = Pick<Workload, "namespace" | "authorizationPolicies">;

export class PolicyIndex {
  readonly #byKey = new Map<string, Authorization>();
  readonly #global: Authorization[] = [];
  readonly #byNamespace = new Map<string, Authorization[]>();
  // Workload objects are replaced, never mutated, on each xDS push, so identity is a safe key.
  readonly #cache = new WeakMap<PolicyTarget, readonly Authorization[]>();

  constructor(policies: Iterable<Authorization>) {
    // A later policy with the same key replaces an earlier one, as an xDS update does.
    for (const p of policies) this.#byKey.set(`${p.namespace}/${p.name}`, p);
    for (const p of this.#byKey.values()) {
      if (p.scope === "GLOBAL") this.#global.push(p);
      else if (p.scope === "NAMESPACE") {
        const list = this.#byNamespace.get(p.namespace);
        if (list) list.push(p);
        else this.#byNamespace.set(p.namespace, [p]);
      }
      // WORKLOAD_SELECTOR policies apply only where a workload names them.
    }
  }

  get size(): number {
    return this.#byKey.size;
  }

  get(key: string): Authorization | undefined {
    return this.#byKey.get(key);
  }

  /**
   * The policies for connections to `workload`: its namespace's, the global ones, then those it
   * references (ztunnel's order). A referenced key with no policy is skipped: ztunnel treats it
   * as a policy not yet received (or just removed) and logs it; see `unknownReferences`.
   */
  forWorkload(workload: PolicyTarget): readonly Authorization[] {
    const cached = this.#cache.get(workload);
    if (cached) return cached;
    const out: Authorization[] = [...(this.#byNamespace.get(workload.namespace) ?? []), ...this.#global];
    const seen = new Set(out);
    for (const key of workload.authorizationPolicies ?? []) {
      const p = this.#byKey.get(key);
      if (p && !seen.has(p)) {
        seen.add(p);
        out.push(p);
      }
    }
    this.#cache.set(workload, out);
    return out;
  }

  /** Keys `workload` references that this snapshot does not hold, for a warning. */
  unknownReferences(workload: PolicyTarget): string[] {
    return (workload.authorizationPolicies ?? []).filter((key) => !this.#byKey.has(key));
  }
}
