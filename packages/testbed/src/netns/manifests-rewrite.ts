// What the "API server" of a netns mesh shows, as pure functions over the user's objects: Node
// addresses become the node netns addresses, Pod status comes from the sandboxes that actually
// exist (the IP CNI gave, Ready once the app listens), loopback Service VIPs move to 198.18.100.x.
// Everything else passes through unchanged. manifests.ts applies this to a folder.

import { isIstioGateway, isPod, type KubeObject, type Node, type Pod } from "@ambient/kube";
import type { HostsEntry } from "./pods.js";

/** What the harness knows about a pod it runs; absent means no sandbox yet (Pending). */
export interface PodRuntimeState {
  /** The IP CNI gave the pod. */
  ip: string;
  /** The app is listening (Kubernetes' Ready condition). */
  ready: boolean;
  /** Merged into metadata.annotations (e.g. ambient.istio.io/redirection). */
  annotations?: Record<string, string>;
}

export interface RewriteContext {
  /** Node name → its netns address. */
  nodes: ReadonlyMap<string, string>;
  /** "namespace/name" → pod state. */
  pods: ReadonlyMap<string, PodRuntimeState>;
  /** "namespace/name" → the VIP given to a Service whose own was loopback or missing. */
  vips: ReadonlyMap<string, string>;
}

interface ServiceSpec {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  [field: string]: unknown;
}

/** Netns-mode Service VIPs (PLAN: "Addresses"). */
const VIP_NET = "198.18.100";
const MAX_VIP_HOST = 254;

export function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function keyOf(o: KubeObject): string {
  return podKey(o.metadata.namespace ?? "default", o.metadata.name);
}

export function isNode(o: KubeObject): o is Node {
  return o.kind === "Node" && o.apiVersion === "v1";
}

export function isService(o: KubeObject): o is KubeObject<ServiceSpec> {
  return o.kind === "Service" && o.apiVersion === "v1";
}

/** A Service the API server gives a ClusterIP (not headless, not ExternalName). */
function hasClusterIp(spec: ServiceSpec): boolean {
  return spec.type !== "ExternalName" && spec.clusterIP !== "None";
}

/** Loopback (local mode's 127.10.100.x) or missing: such a VIP means nothing between namespaces. */
function needsVip(spec: ServiceSpec): boolean {
  if (!hasClusterIp(spec)) return false;
  const ips = [spec.clusterIP, ...(spec.clusterIPs ?? [])].filter((ip): ip is string => !!ip);
  return ips.length === 0 || ips.some((ip) => ip.startsWith("127."));
}

/**
 * Hands out 198.18.100.x to Services that need one: on first sight in key order, so the same
 * folder gives the same VIPs on every run; then each Service keeps its VIP while the process runs.
 */
export class VipAllocator {
  private readonly given = new Map<string, string>();

  /** The VIP of every Service in `objects` that needs one. Problems name Services left without. */
  assign(objects: readonly KubeObject[]): { vips: Map<string, string>; problems: string[] } {
    const services = objects.filter(isService);
    const taken = new Set<string>(this.given.values());
    // A VIP a manifest sets itself in our range is not ours to hand out.
    for (const s of services)
      for (const ip of [s.spec?.clusterIP, ...(s.spec?.clusterIPs ?? [])]) if (ip) taken.add(ip);
    const vips = new Map<string, string>();
    const problems: string[] = [];
    for (const s of [...services].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0))) {
      if (!needsVip(s.spec ?? {})) continue;
      const key = keyOf(s);
      let ip = this.given.get(key);
      if (!ip) {
        ip = freeVip(taken);
        if (!ip) {
          problems.push(`Service ${key}: no free address left in ${VIP_NET}.0/24`);
          continue;
        }
        taken.add(ip);
        this.given.set(key, ip);
      }
      vips.set(key, ip);
    }
    return { vips, problems };
  }
}

function freeVip(taken: ReadonlySet<string>): string | undefined {
  for (let host = 1; host <= MAX_VIP_HOST; host++) {
    const ip = `${VIP_NET}.${host}`;
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}

/** The object as the control plane and the agents should see it; inputs are not mutated. */
export function rewriteObject(o: KubeObject, ctx: RewriteContext): KubeObject {
  if (isNode(o)) return rewriteNode(o, ctx);
  if (isPod(o)) return rewritePod(o, ctx);
  if (isService(o)) {
    const vip = ctx.vips.get(keyOf(o));
    if (vip) return { ...o, spec: { ...(o.spec ?? {}), clusterIP: vip, clusterIPs: [vip] } };
    if (needsVip(o.spec ?? {})) {
      // No VIP left for it: better none than a loopback one that leads nowhere.
      const { clusterIP: _ip, clusterIPs: _ips, ...spec } = o.spec ?? {};
      return { ...o, spec };
    }
  }
  return o;
}

function rewriteNode(node: Node, ctx: RewriteContext): Node {
  const others = (node.status?.addresses ?? []).filter((a) => a.type !== "InternalIP");
  const ip = ctx.nodes.get(node.metadata.name);
  const addresses = ip ? [{ type: "InternalIP", address: ip }, ...others] : others;
  return { ...node, status: { ...(node.status ?? {}), addresses } };
}

function rewritePod(pod: Pod, ctx: RewriteContext): Pod {
  const state = ctx.pods.get(keyOf(pod));
  const nodeIp = pod.spec?.nodeName ? ctx.nodes.get(pod.spec.nodeName) : undefined;
  const {
    podIP: _ip,
    podIPs: _ips,
    hostIP: _host,
    hostIPs: _hosts,
    phase: _phase,
    conditions,
    ...rest
  } = pod.status ?? {};
  const kept = (conditions ?? []).filter((c) => c.type !== "Ready" && c.type !== "ContainersReady");
  if (!state || !nodeIp) {
    return {
      ...pod,
      status: { ...rest, phase: "Pending", conditions: [...kept, { type: "Ready", status: "False" }] },
    };
  }
  const ready = state.ready ? "True" : "False";
  const annotated = state.annotations
    ? { ...pod.metadata, annotations: { ...(pod.metadata.annotations ?? {}), ...state.annotations } }
    : pod.metadata;
  return {
    ...pod,
    metadata: annotated,
    status: {
      ...rest,
      phase: "Running",
      hostIP: nodeIp,
      hostIPs: [{ ip: nodeIp }],
      podIP: state.ip,
      podIPs: [{ ip: state.ip }],
      conditions: [...kept, { type: "ContainersReady", status: ready }, { type: "Ready", status: ready }],
    },
  };
}

export interface PlannedPod {
  namespace: string;
  name: string;
  node: string;
  serviceAccount: string;
  /** Container ports, sorted: where the app (echo server) listens. May be empty (a client pod). */
  ports: number[];
  labels: Record<string, string>;
  /** Set for a waypoint's pod (label gateway.networking.k8s.io/gateway-name): run a waypoint, not an app. */
  waypoint?: string;
  /**
   * The waypoint binary runs as an ingress gateway: the pod of a class-istio Gateway, or a pod an
   * Istio Gateway's selector picks (then `waypoint` is the pod's own name).
   */
  ingress?: boolean;
}

export interface SkippedPod {
  namespace: string;
  name: string;
  reason: string;
}

export interface PodPlan {
  pods: PlannedPod[];
  byNode: Map<string, PlannedPod[]>;
  skipped: SkippedPod[];
}

/** Istio's label on a waypoint's pods. */
const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
const GATEWAY_CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name";

/** The pods that need a sandbox on each node: scheduled (spec.nodeName) on a node we run. */
export function planPods(objects: readonly KubeObject[], nodes: ReadonlySet<string>): PodPlan {
  const plan: PodPlan = { pods: [], byNode: new Map(), skipped: [] };
  for (const n of nodes) plan.byNode.set(n, []);
  const selectors = objects
    .filter(isIstioGateway)
    .map((g) => Object.entries(g.spec?.selector ?? {}))
    .filter((entries) => entries.length > 0);
  for (const o of objects) {
    if (!isPod(o)) continue;
    const namespace = o.metadata.namespace ?? "default";
    const name = o.metadata.name;
    const skip = (reason: string) => plan.skipped.push({ namespace, name, reason });
    const node = o.spec?.nodeName;
    if (o.spec?.hostNetwork) {
      skip("hostNetwork: it shares its node's netns, so there is no sandbox to create");
      continue;
    }
    if (o.status?.phase === "Succeeded" || o.status?.phase === "Failed") {
      skip(`phase ${o.status.phase}: finished pods have no sandbox`);
      continue;
    }
    if (!node) {
      skip("not scheduled (no spec.nodeName)");
      continue;
    }
    if (!nodes.has(node)) {
      skip(`node ${node} is not in the topology`);
      continue;
    }
    const ports = new Set<number>();
    for (const c of o.spec?.containers ?? []) for (const p of c.ports ?? []) ports.add(p.containerPort);
    const labels = o.metadata.labels ?? {};
    const pod: PlannedPod = {
      namespace,
      name,
      node,
      serviceAccount: o.spec?.serviceAccountName || o.spec?.serviceAccount || "default",
      ports: [...ports].sort((a, b) => a - b),
      labels,
      ...(labels[GATEWAY_NAME_LABEL] && { waypoint: labels[GATEWAY_NAME_LABEL] }),
    };
    if (labels[GATEWAY_NAME_LABEL] && labels[GATEWAY_CLASS_LABEL] === "istio") pod.ingress = true;
    else if (!labels[GATEWAY_NAME_LABEL] && selectors.some((e) => e.every(([k, v]) => labels[k] === v))) {
      pod.waypoint = name;
      pod.ingress = true;
    }
    plan.pods.push(pod);
    plan.byNode.get(node)?.push(pod);
  }
  return plan;
}

/**
 * /etc/hosts lines for the Services of the (rewritten) objects: the FQDN and the shorter forms a
 * pod's resolv.conf search path would complete; the bare name only for `namespace`'s own Services.
 */
export function serviceHostsEntries(objects: readonly KubeObject[], namespace?: string): HostsEntry[] {
  const out: HostsEntry[] = [];
  for (const o of objects) {
    if (!isService(o)) continue;
    const spec = o.spec ?? {};
    const ip = spec.clusterIP;
    if (!ip || !hasClusterIp(spec)) continue;
    const ns = o.metadata.namespace ?? "default";
    const n = o.metadata.name;
    const names = [`${n}.${ns}.svc.cluster.local`, `${n}.${ns}.svc`, `${n}.${ns}`];
    if (ns === namespace) names.push(n);
    out.push({ ip, names });
  }
  return out;
}
