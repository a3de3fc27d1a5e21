// Local mode stands in for Istio's gateway deployment controller: for each waypoint Gateway (class
// istio-waypoint) it adds the Pod and the Service that controller's Deployment and Service would
// give the cluster, so that the waypoint is an ordinary workload behind `<gw>.<ns>.svc`. Runs before
// the AddressAllocator, which then gives the pod its 127.10.N.x and the Service its VIP.

import { isIp } from "@ambient/core";
import {
  type Gateway,
  isGateway,
  isNode,
  type KubeObject,
  namespaceOf,
  objectKey,
  type Pod,
  type Service,
} from "@ambient/kube";
import { compareStrings, type Warning } from "../translate/context.js";
import { INGRESS_CLASS, isIngressGateway } from "../translate/ingress.js";
import {
  GATEWAY_CLASS_LABEL,
  GATEWAY_MANAGED_LABEL,
  GATEWAY_NAME_LABEL,
  isWaypointGateway,
  MESH_CONTROLLER,
  WAYPOINT_CLASS,
  WAYPOINT_HBONE_PORT,
} from "../translate/waypoints.js";

/** On a waypoint Gateway: the Node its pod runs on (default: the first Node by name). */
export const WAYPOINT_NODE_ANNOTATION = "ambient.io/node";
/** On the objects made here, so tools (ambientctl, the local mesh) can tell them from real ones. */
export const SYNTHESIZED_ANNOTATION = "ambient.io/synthesized-for";
/** Istio's waypoint Service also exposes the proxy's readiness port. */
const STATUS_PORT = 15021;

export interface SynthesizedWaypoints {
  /** The input objects plus a Pod and a Service per waypoint (minus those a real object replaces). */
  objects: KubeObject[];
  warnings: Warning[];
}

export function synthesizeWaypoints(objects: readonly KubeObject[]): SynthesizedWaypoints {
  const byKey = new Map<string, KubeObject>();
  for (const obj of objects) byKey.set(objectKey(obj), obj);
  const nodes = objects
    .filter(isNode)
    .map((n) => n.metadata.name)
    .sort(compareStrings);
  // One Gateway written twice (v1 and v1beta1) is one waypoint: the last one, as translation keeps.
  const gateways = new Map<string, Gateway>();
  for (const obj of objects)
    if (isGateway(obj) && (isWaypointGateway(obj) || isIngressGateway(obj)))
      gateways.set(objectKey(obj), obj);

  const out = [...objects];
  const warnings: Warning[] = [];
  for (const key of [...gateways.keys()].sort(compareStrings)) {
    const gateway = gateways.get(key)!;
    const waypoint = `${namespaceOf(gateway)}/${gateway.metadata.name}`;
    const node = nodeFor(gateway, nodes, warnings);
    const madeObjects = isIngressGateway(gateway)
      ? [ingressPod(gateway, node, warnings), ingressService(gateway)]
      : [waypointPod(gateway, node, warnings), waypointService(gateway)];
    for (const made of madeObjects) {
      const madeKey = objectKey(made);
      const real = byKey.get(madeKey);
      if (real) {
        // The user's own object is the truth, as a Deployment someone wrote by hand would be. One
        // made here and passed along by a tool (ambientctl's netns mode gives it a real address) is
        // not a replacement worth a warning.
        if (real.metadata.annotations?.[SYNTHESIZED_ANNOTATION] === objectKey(gateway)) continue;
        warnings.push({
          object: madeKey,
          message: `replaces the ${made.kind} Ambient would create for waypoint ${waypoint}; make sure it serves HBONE on ${WAYPOINT_HBONE_PORT}`,
        });
        continue;
      }
      byKey.set(madeKey, made);
      out.push(made);
    }
  }
  return { objects: out, warnings };
}

function nodeFor(gateway: Gateway, nodes: readonly string[], warnings: Warning[]): string | undefined {
  const wanted = gateway.metadata.annotations?.[WAYPOINT_NODE_ANNOTATION];
  if (wanted) {
    if (!nodes.includes(wanted)) {
      warnings.push({
        object: objectKey(gateway),
        message: `${WAYPOINT_NODE_ANNOTATION}: ${wanted} is not a Node in the manifests; the waypoint pod is placed there anyway`,
      });
    }
    return wanted;
  }
  if (nodes.length === 0) {
    warnings.push({
      object: objectKey(gateway),
      message: "there is no Node to run the waypoint on; its pod has no address until one is added",
    });
  }
  return nodes[0];
}

function commonLabels(name: string, className = WAYPOINT_CLASS): Record<string, string> {
  return {
    [GATEWAY_NAME_LABEL]: name,
    [GATEWAY_CLASS_LABEL]: className,
    [GATEWAY_MANAGED_LABEL]: MESH_CONTROLLER,
  };
}

/**
 * A class-istio Gateway's pod, as Istio's deployment `<gw>-istio` would run it: never captured
 * (it is the mesh's edge), service account `<gw>-istio`, an address from spec.addresses or the
 * allocator, and a container port per listener.
 */
function ingressPod(gateway: Gateway, node: string | undefined, warnings: Warning[]): Pod {
  const name = gateway.metadata.name;
  const podIP = requestedAddress(gateway, warnings);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `${name}-${INGRESS_CLASS}`,
      namespace: namespaceOf(gateway),
      labels: {
        ...commonLabels(name, INGRESS_CLASS),
        "istio.io/dataplane-mode": "none",
        "service.istio.io/canonical-name": `${name}-${INGRESS_CLASS}`,
        "service.istio.io/canonical-revision": "latest",
      },
      annotations: { [SYNTHESIZED_ANNOTATION]: objectKey(gateway) },
    },
    spec: {
      ...(node ? { nodeName: node } : {}),
      serviceAccountName: `${name}-${INGRESS_CLASS}`,
      containers: [
        {
          name: "istio-proxy",
          ports: listenerPorts(gateway).map((p) => ({ containerPort: p.port, protocol: "TCP" })),
        },
      ],
    },
    status: { phase: "Running", ...(podIP ? { podIP } : {}) },
  };
}

function ingressService(gateway: Gateway): Service {
  const name = gateway.metadata.name;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: `${name}-${INGRESS_CLASS}`,
      namespace: namespaceOf(gateway),
      labels: commonLabels(name, INGRESS_CLASS),
      annotations: { [SYNTHESIZED_ANNOTATION]: objectKey(gateway) },
    },
    spec: {
      selector: { [GATEWAY_NAME_LABEL]: name },
      ports: listenerPorts(gateway).map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: p.port,
        protocol: "TCP",
      })),
    },
  };
}

/** One port per listener port (several listeners may share one), named after the first. */
function listenerPorts(gateway: Gateway): { name: string; port: number }[] {
  const seen = new Map<number, string>();
  for (const l of gateway.spec?.listeners ?? []) if (!seen.has(l.port)) seen.set(l.port, l.name);
  return [...seen].map(([port, name]) => ({ name, port }));
}

function waypointPod(gateway: Gateway, node: string | undefined, warnings: Warning[]): Pod {
  const name = gateway.metadata.name;
  const namespace = namespaceOf(gateway);
  const podIP = requestedAddress(gateway, warnings);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `${name}-waypoint`,
      namespace,
      labels: {
        ...commonLabels(name),
        // A waypoint is never captured: it terminates HBONE itself on podIP:15008.
        "istio.io/dataplane-mode": "none",
        "service.istio.io/canonical-name": name,
        "service.istio.io/canonical-revision": "latest",
      },
      annotations: { [SYNTHESIZED_ANNOTATION]: objectKey(gateway) },
    },
    spec: {
      ...(node ? { nodeName: node } : {}),
      // Istio's default waypoint service account is named after the Gateway.
      serviceAccountName: name,
      containers: [
        {
          name: "istio-proxy",
          ports: [{ name: "mesh", containerPort: WAYPOINT_HBONE_PORT, protocol: "TCP" }],
        },
      ],
    },
    status: { phase: "Running", ...(podIP ? { podIP } : {}) },
  };
}

function waypointService(gateway: Gateway): Service {
  const name = gateway.metadata.name;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: namespaceOf(gateway),
      labels: commonLabels(name),
      annotations: { [SYNTHESIZED_ANNOTATION]: objectKey(gateway) },
    },
    spec: {
      // No clusterIP: the AddressAllocator gives it one from the local VIP range.
      selector: { [GATEWAY_NAME_LABEL]: name },
      ports: [
        { name: "mesh", port: WAYPOINT_HBONE_PORT, targetPort: WAYPOINT_HBONE_PORT, protocol: "TCP" },
        { name: "status", port: STATUS_PORT, targetPort: STATUS_PORT, protocol: "TCP" },
      ],
    },
  };
}

/** The Gateway's `spec.addresses[0].value`, when it is an IP address: the pod's fixed address. */
function requestedAddress(gateway: Gateway, warnings: Warning[]): string | undefined {
  const addresses = gateway.spec?.["addresses"];
  const first = Array.isArray(addresses) ? (addresses[0] as { type?: string; value?: unknown }) : undefined;
  if (first?.value === undefined) return undefined;
  if (isIp(first.value)) return first.value as string;
  warnings.push({
    object: objectKey(gateway),
    message: `spec.addresses[0].value ${JSON.stringify(first.value)} is not an IP address; the waypoint pod gets an allocated one`,
  });
  return undefined;
}
