// What a waypoint Gateway (class istio-waypoint) becomes in the cluster, as Istio's gateway
// deployment controller makes it: a ServiceAccount, a Deployment running our `waypoint` image with
// the pod's env and files (README "Kubernetes mode"), and a Service with the status port and the
// Gateway's listeners. Pure: the reconcile loop applies what this returns.

import type { Gateway, KubeObject, Service } from "@ambient/kube";
import {
  GATEWAY_MANAGED_LABEL,
  GATEWAY_NAME_LABEL,
  MESH_CONTROLLER,
  WAYPOINT_CLASS,
} from "../translate/waypoints.js";

const GATEWAY_CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name";
/** GatewayClass.spec.controllerName of Istio's waypoint class. */
export const MESH_CONTROLLER_NAME = "istio.io/mesh-controller";
/** The readiness port (`/healthz/ready`) every Istio proxy serves and its Service exposes. */
export const STATUS_PORT = 15021;
const METRICS_PORT = 15020;
const ROOT_CERT_CONFIGMAP = "istio-ca-root-cert";
/** The image's user (deploy/images: `USER 65532`); Istio's proxy image runs as 1337. */
const WAYPOINT_UID = 65532;
// Istio's: the projected token lives 12 h and the kubelet renews it at 80% of that.
const TOKEN_EXPIRATION_SECONDS = 43_200;

export interface WaypointTemplateOptions {
  /** `<hub>/waypoint:<tag>`. */
  image: string;
  /** XDS_ADDRESS and CA_ADDRESS of the pods: istiod.istio-system.svc:15012. */
  controlPlaneAddress: string;
  trustDomain: string;
  clusterId: string;
  /** Service hostnames in the Programmed message: `<name>.<ns>.svc.<domain>`. */
  clusterDomain: string;
  imagePullPolicy?: string | undefined;
}

export interface WaypointObjects {
  serviceAccount: KubeObject;
  deployment: KubeObject;
  service: Service;
}

export const GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1";

/** The GatewayClass Istio installs for waypoints; created when missing. */
export function waypointGatewayClass(): KubeObject {
  return {
    apiVersion: GATEWAY_API_VERSION,
    kind: "GatewayClass",
    metadata: { name: WAYPOINT_CLASS },
    spec: {
      controllerName: MESH_CONTROLLER_NAME,
      description: "Ambient waypoints: the L7 proxies of the mesh, one Deployment per Gateway",
    },
  };
}

export function waypointObjects(gateway: Gateway, o: WaypointTemplateOptions): WaypointObjects {
  const name = gateway.metadata.name;
  const namespace = gateway.metadata.namespace ?? "default";
  const infra = infrastructure(gateway);
  const labels = {
    ...infra.labels,
    [GATEWAY_NAME_LABEL]: name,
    [GATEWAY_CLASS_LABEL]: WAYPOINT_CLASS,
    [GATEWAY_MANAGED_LABEL]: MESH_CONTROLLER,
  };
  const metadata = () => ({
    name,
    namespace,
    labels: { ...labels },
    ...(Object.keys(infra.annotations).length > 0 ? { annotations: { ...infra.annotations } } : {}),
    // Deleting the Gateway deletes these (garbage collection), as with Istio.
    ownerReferences: [{ apiVersion: GATEWAY_API_VERSION, kind: "Gateway", name, uid: gateway.metadata.uid }],
  });
  const fieldRef = (path: string) => ({ valueFrom: { fieldRef: { fieldPath: path } } });
  const deployment: KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(),
    spec: {
      selector: { matchLabels: { [GATEWAY_NAME_LABEL]: name } },
      template: {
        metadata: {
          annotations: {
            ...infra.annotations,
            "istio.io/rev": "default",
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(METRICS_PORT),
            "prometheus.io/path": "/metrics",
          },
          labels: {
            "service.istio.io/canonical-name": name,
            "service.istio.io/canonical-revision": "latest",
            ...labels,
            "sidecar.istio.io/inject": "false",
            // A waypoint terminates HBONE itself: ztunnel must never capture its pod, whatever
            // spec.infrastructure.labels says.
            "istio.io/dataplane-mode": "none",
          },
        },
        spec: {
          serviceAccountName: name,
          containers: [
            {
              name: "istio-proxy",
              image: o.image,
              ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
              ports: [
                { name: "mesh", containerPort: 15008, protocol: "TCP" },
                { name: "metrics", containerPort: METRICS_PORT, protocol: "TCP" },
                { name: "status-port", containerPort: STATUS_PORT, protocol: "TCP" },
              ],
              env: [
                { name: "GATEWAY_NAME", value: name },
                { name: "POD_NAME", ...fieldRef("metadata.name") },
                { name: "POD_NAMESPACE", ...fieldRef("metadata.namespace") },
                { name: "INSTANCE_IP", ...fieldRef("status.podIP") },
                { name: "SERVICE_ACCOUNT", ...fieldRef("spec.serviceAccountName") },
                { name: "NODE_NAME", ...fieldRef("spec.nodeName") },
                { name: "XDS_ADDRESS", value: o.controlPlaneAddress },
                { name: "CA_ADDRESS", value: o.controlPlaneAddress },
                { name: "TRUST_DOMAIN", value: o.trustDomain },
                { name: "CLUSTER_ID", value: o.clusterId },
              ],
              // Istio's probes: start-up checked every second for 30 s, then every 15 s.
              startupProbe: {
                httpGet: { path: "/healthz/ready", port: STATUS_PORT, scheme: "HTTP" },
                periodSeconds: 1,
                failureThreshold: 30,
                timeoutSeconds: 1,
              },
              readinessProbe: {
                httpGet: { path: "/healthz/ready", port: STATUS_PORT, scheme: "HTTP" },
                periodSeconds: 15,
                failureThreshold: 4,
                timeoutSeconds: 1,
              },
              securityContext: {
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                runAsUser: WAYPOINT_UID,
                runAsGroup: WAYPOINT_UID,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [
                { name: "istio-token", mountPath: "/var/run/secrets/tokens" },
                { name: "istiod-ca-cert", mountPath: "/var/run/secrets/istio" },
              ],
            },
          ],
          volumes: [
            {
              name: "istio-token",
              projected: {
                sources: [
                  {
                    serviceAccountToken: {
                      audience: "istio-ca",
                      expirationSeconds: TOKEN_EXPIRATION_SECONDS,
                      path: "istio-token",
                    },
                  },
                ],
              },
            },
            { name: "istiod-ca-cert", configMap: { name: ROOT_CERT_CONFIGMAP } },
          ],
        },
      },
    },
  };
  const service: Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(),
    spec: {
      type: "ClusterIP",
      selector: { [GATEWAY_NAME_LABEL]: name },
      ports: servicePorts(gateway),
    },
  };
  const serviceAccount: KubeObject = { apiVersion: "v1", kind: "ServiceAccount", metadata: metadata() };
  return { serviceAccount, deployment, service };
}

/** The status port first, then one port per distinct listener port, named after the listener. */
function servicePorts(gateway: Gateway): NonNullable<Service["spec"]>["ports"] {
  const ports = [{ name: "status-port", port: STATUS_PORT, protocol: "TCP", appProtocol: "tcp" }];
  const seen = new Set<number>([STATUS_PORT]);
  for (const [i, l] of (gateway.spec?.listeners ?? []).entries()) {
    if (typeof l.port !== "number" || seen.has(l.port)) continue;
    seen.add(l.port);
    const protocol = String(l.protocol ?? "TCP").toLowerCase();
    ports.push({ name: l.name || `${protocol}-${i}`, port: l.port, protocol: "TCP", appProtocol: protocol });
  }
  return ports;
}

/** Gateway API's `spec.infrastructure`: labels and annotations the Gateway asks its resources to carry. */
function infrastructure(gateway: Gateway): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  const infra = (gateway.spec?.["infrastructure"] ?? {}) as {
    labels?: Record<string, unknown>;
    annotations?: Record<string, unknown>;
  };
  const strings = (m: Record<string, unknown> | undefined) =>
    Object.fromEntries(Object.entries(m ?? {}).filter(([, v]) => typeof v === "string")) as Record<
      string,
      string
    >;
  return { labels: strings(infra.labels), annotations: strings(infra.annotations) };
}
