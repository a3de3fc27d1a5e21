// The waypoint's L7 configuration: every L7 resource the control plane sent (VirtualService,
// DestinationRule, AuthorizationPolicy and RequestAuthentication with targetRefs, waypoint
// Gateways), compiled into the request stages. Recompiled once per xDS update, never per request;
// a resource that fails to compile is reported and the previous compiled stages stay in force.

import type { L7Resource, Logger } from "@ambient/core";
import type { ProxyState } from "@ambient/dataplane";
import type { DrObject } from "./cluster/index.js";
import { ClusterStage } from "./cluster-stage.js";
import { defaultStages } from "./default-stages.js";
import { loadCredentials } from "./ingress/credentials.js";
import type { IngressServing } from "./ingress/listeners.js";
import { compileIngressPlan, type IngressSelf } from "./ingress/plan.js";
import { appliesToGateway, ingressRoute } from "./ingress/stages.js";
import { TlsRoutes } from "./ingress/tls-routes.js";
import type { L7Request } from "./model/request.js";
import { PolicyStage } from "./policy-stage.js";
import type { RetryPlan, RouteResult, Stages } from "./proxy/stages.js";
import {
  compileRoutes,
  corsPreflight,
  corsResponseHeaders,
  faultApplies,
  type RetryPolicy,
  type RouteTable,
  shouldRetry,
  type VsObject,
} from "./route/index.js";

export interface WaypointRef {
  name: string;
  namespace: string;
  /**
   * An ingress gateway: its pod (whose labels pick its Gateways and selector policies) and the
   * root namespace (whose selector policies apply to it too). Absent: a waypoint.
   */
  ingress?: { pod: string; rootNamespace: string };
}

export class L7Config {
  private readonly resources = new Map<string, L7Resource>();
  private compiled: Stages;
  private routes: RouteTable | undefined;
  private readonly clusters: ClusterStage;
  private readonly policies: PolicyStage;
  /** What an ingress gateway's listeners serve, recompiled with the rest. */
  private ingressState: IngressServing = {
    plan: { gateways: [], ports: [], skipped: [] },
    credentials: new Map(),
    tlsRoutes: new TlsRoutes([], []),
  };
  private readonly ingressListeners = new Set<(s: IngressServing) => void>();

  constructor(
    private readonly state: ProxyState,
    private readonly self: WaypointRef,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {
    this.compiled = defaultStages(state);
    this.clusters = new ClusterStage(state);
    this.policies = new PolicyStage(self, logger);
  }

  apply(changes: { upserts: Map<string, L7Resource>; removes: string[] }): void {
    for (const [name, r] of changes.upserts) this.resources.set(name, r);
    for (const name of changes.removes) this.resources.delete(name);
    this.compile();
  }

  stages(): Stages {
    return this.compiled;
  }

  /** An ingress gateway's plan and certificates, as of the last update. */
  ingress(): IngressServing {
    return this.ingressState;
  }

  /** Called after each update that compiled an ingress plan. */
  onIngress(listener: (s: IngressServing) => void): void {
    this.ingressListeners.add(listener);
  }

  /** This waypoint's `istio.io/waypoint-for` (service by default), from its own Gateway. */
  waypointFor(): string {
    const gw = this.resources.get(`Gateway/${this.self.namespace}/${this.self.name}`);
    return gw?.labels["istio.io/waypoint-for"] ?? "service";
  }

  byKind(kind: string): L7Resource[] {
    return [...this.resources.values()].filter((r) => r.kind === kind);
  }

  snapshot(): unknown {
    return {
      resources: [...this.resources.values()]
        .filter((r) => r.kind !== "Pod")
        .map((r) => ({ kind: r.kind, namespace: r.namespace, name: r.name })),
      clusters: this.clusters.snapshot(),
    };
  }

  private compile(): void {
    const base = defaultStages(this.state);
    const ingress = this.self.ingress;
    const self: IngressSelf | undefined = ingress && {
      namespace: this.self.namespace,
      labels: this.resources.get(`Pod/${this.self.namespace}/${ingress.pod}`)?.labels ?? {},
    };
    const plan = self && compileIngressPlan(this.resources.values(), self);
    try {
      this.routes = compileRoutes(
        this.byKind("VirtualService").map(asObject) as VsObject[],
        plan ? { gateways: plan.gateways } : { namespace: this.self.namespace },
      );
    } catch (err) {
      this.logger.error(
        { err: (err as Error).message },
        "VirtualService rejected; keeping the previous routes",
      );
    }
    const labels = new Map<string, Record<string, string>>();
    for (const p of this.byKind("Pod")) labels.set(`${p.namespace}/${p.name}`, p.labels);
    this.clusters.update(this.byKind("DestinationRule").map(asObject) as DrObject[], labels);
    this.policies.update(
      this.byKind("AuthorizationPolicy"),
      this.byKind("RequestAuthentication"),
      self && ingress ? (r) => appliesToGateway(r, self, ingress.rootNamespace) : undefined,
    );
    const routes = this.routes;
    const random = this.random;
    const route = plan
      ? ingressRoute(plan, (req) => (routes ? toRouteResult(routes, req, random) : { kind: "no-route" }))
      : (req: L7Request) => (routes ? toRouteResult(routes, req, random) : base.route(req));
    if (plan) {
      for (const skipped of plan.skipped) this.logger.warn(skipped);
      this.ingressState = {
        plan,
        credentials: loadCredentials(this.byKind("Secret"), this.logger),
        tlsRoutes: new TlsRoutes(this.byKind("VirtualService"), plan.gateways),
      };
      for (const listener of this.ingressListeners) listener(this.ingressState);
    }
    this.compiled = {
      ...base,
      route,
      pick: this.clusters.pick,
      authenticate: this.policies.authenticate,
      authorize: this.policies.authorize,
      authorizeTcp: this.policies.authorizeTcp,
    };
  }
}

function asObject(r: L7Resource) {
  return {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { name: r.name, namespace: r.namespace, labels: r.labels, annotations: r.annotations },
    spec: r.spec,
  };
}

function retryPlan(policy: RetryPolicy): RetryPlan {
  return {
    attempts: policy.attempts,
    ...(policy.perTryTimeoutMs !== undefined ? { perTryTimeoutMs: policy.perTryTimeoutMs } : {}),
    shouldRetry: (o) => shouldRetry(policy, o),
  };
}

/** Translates the route engine's decision into what the request handler executes. */
function toRouteResult(
  table: RouteTable,
  req: Parameters<RouteTable["route"]>[0],
  random: () => number,
): RouteResult {
  const d = table.route(req, random);
  switch (d.kind) {
    case "default":
      return { kind: "forward", host: req.destination.host, retry: retryPlan(d.retry) };
    case "no-route":
      return { kind: "no-route" };
    case "direct":
      return { kind: "respond", status: d.status, ...(d.body !== undefined ? { body: d.body } : {}) };
    case "redirect":
      return { kind: "respond", status: d.status, headers: { location: d.location } };
    case "route": {
      if (d.cors && req.method === "OPTIONS") {
        const pre = corsPreflight(d.cors, req);
        if (pre) return { kind: "respond", status: pre.status, headers: pre.headers };
      }
      const fault: { delayMs?: number; abortStatus?: number } = {};
      if (d.fault?.delay && faultApplies(d.fault.delay.percentage, random)) fault.delayMs = d.fault.delay.ms;
      if (d.fault?.abort?.httpStatus && faultApplies(d.fault.abort.percentage, random))
        fault.abortStatus = d.fault.abort.httpStatus;
      const mirrors = d.mirrors
        .filter((m) => faultApplies(m.percentage, random))
        .map((m) => ({
          host: m.destination.host,
          ...(m.destination.subset ? { subset: m.destination.subset } : {}),
          ...(m.destination.port ? { port: m.destination.port } : {}),
        }));
      return {
        kind: "forward",
        ...(d.name ? { name: d.name } : {}),
        ...(mirrors.length ? { mirrors } : {}),
        host: d.destination.host,
        ...(d.destination.subset ? { subset: d.destination.subset } : {}),
        ...(d.destination.port ? { port: d.destination.port } : {}),
        ...(d.rewrite
          ? {
              rewrite: {
                ...(d.rewrite.path ? { path: d.rewrite.path } : {}),
                ...(d.rewrite.authority ? { authority: d.rewrite.authority } : {}),
              },
            }
          : {}),
        requestHeaders: [d.requestHeaders],
        responseHeaders: [d.responseHeaders],
        ...(d.timeoutMs !== undefined ? { timeoutMs: d.timeoutMs } : {}),
        retry: retryPlan(d.retry),
        ...(fault.delayMs || fault.abortStatus ? { fault } : {}),
        ...(d.cors ? { corsHeaders: corsResponseHeaders(d.cors, req) } : {}),
      };
    }
  }
}
