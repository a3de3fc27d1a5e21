// What a Gateway of class istio-waypoint or istio becomes in the cluster, as Istio's gateway
// deployment controller makes it: a ServiceAccount, a Deployment running our `waypoint` image with
// the pod's env and files (README "Kubernetes mode"), and a Service with the status port and the
// Gateway's listeners. A class-istio Gateway (an ingress gateway) differs where Istio's differs: the
// objects are named `<gateway>-istio`, the proxy runs with `--ingress` and binds the listener ports
// on its pod IP, and the Service is a LoadBalancer. Pure: the reconcile loop applies what this returns.

import type { Gateway, KubeObject, Service } from "@ambient/kube";
import { INGRESS_CLASS, isIngressGateway } from "../translate/ingress.js";
import {
  GATEWAY_MANAGED_LABEL,
  GATEWAY_NAME_LABEL,
  MESH_CONTROLLER,
  WAYPOINT_CLASS,
} from "../translate/waypoints.js";

export const GATEWAY_CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name";
/** GatewayClass.spec.controllerName of Istio's waypoint class. */
export const MESH_CONTROLLER_NAME = "istio.io/mesh-controller";
/** GatewayClass.spec.controllerName of Istio's `istio` class (ingress and egress gateways). */
export const INGRESS_CONTROLLER_NAME = "istio.io/gateway-controller";
/**
 * The gateway.istio.io/managed value Istio puts on what it deploys for a class-istio Gateway. Not
 * the waypoints' value: the translator takes a Service labelled with that one for a waypoint's own.
 */
export const GATEWAY_CONTROLLER = "istio.io-gateway-controller";
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

/** The GatewayClasses Istio installs (waypoints, then ingress gateways); each created when missing. */
export function gatewayClasses(): KubeObject[] {
  const cls = (name: string, controllerName: string, description: string): KubeObject => ({
    apiVersion: GATEWAY_API_VERSION,
    kind: "GatewayClass",
    metadata: { name },
    spec: { controllerName, description },
  });
  return [
    cls(
      WAYPOINT_CLASS,
      MESH_CONTROLLER_NAME,
      "Ambient waypoints: the L7 proxies of the mesh, one Deployment per Gateway",
    ),
    cls(
      INGRESS_CLASS,
      INGRESS_CONTROLLER_NAME,
      "Ambient ingress gateways: a Deployment and a LoadBalancer Service per Gateway",
    ),
  ];
}

/** The classes whose Gateways this controller deploys. */
export function isDeployedClass(gateway: Gateway): boolean {
  return gateway.spec?.gatewayClassName === WAYPOINT_CLASS || isIngressGateway(gateway);
}

/** Istio's names: a waypoint's objects are the Gateway's name, an ingress gateway's `<name>-istio`. */
export function deployedName(gateway: Gateway): string {
  return isIngressGateway(gateway) ? `${gateway.metadata.name}-${INGRESS_CLASS}` : gateway.metadata.name;
}

/** The ServiceAccount, Deployment and Service of a Gateway of class istio-waypoint or istio. */
export function gatewayObjects(gateway: Gateway, o: WaypointTemplateOptions): WaypointObjects {
  const gatewayName = gateway.metadata.name;
  const name = deployedName(gateway);
  const ingress = isIngressGateway(gateway);
  const namespace = gateway.metadata.namespace ?? "default";
  const infra = infrastructure(gateway);
  const labels = {
    ...infra.labels,
    [GATEWAY_NAME_LABEL]: gatewayName,
    [GATEWAY_CLASS_LABEL]: ingress ? INGRESS_CLASS : WAYPOINT_CLASS,
    [GATEWAY_MANAGED_LABEL]: ingress ? GATEWAY_CONTROLLER : MESH_CONTROLLER,
  };
  const metadata = () => ({
    name,
    namespace,
    labels: { ...labels },
    ...(Object.keys(infra.annotations).length > 0 ? { annotations: { ...infra.annotations } } : {}),
    // Deleting the Gateway deletes these (garbage collection), as with Istio.
    ownerReferences: [
      { apiVersion: GATEWAY_API_VERSION, kind: "Gateway", name: gatewayName, uid: gateway.metadata.uid },
    ],
  });
  const fieldRef = (path: string) => ({ valueFrom: { fieldRef: { fieldPath: path } } });
  const deployment: KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(),
    spec: {
      selector: { matchLabels: { [GATEWAY_NAME_LABEL]: gatewayName } },
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
            // A waypoint terminates HBONE itself and an ingress gateway is the mesh's edge: ztunnel
            // must never capture their pods, whatever spec.infrastructure.labels says.
            "istio.io/dataplane-mode": "none",
          },
        },
        spec: {
          serviceAccountName: name,
          // An ingress gateway binds its listeners' ports (80, 443) as a non-root user, as Istio's do.
          ...(ingress
            ? { securityContext: { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] } }
            : {}),
          containers: [
            {
              name: "istio-proxy",
              image: o.image,
              ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
              ...(ingress ? { args: ["--ingress"] } : {}),
              ports: [
                // An ingress gateway's listener ports go undeclared, as Istio leaves them: a listener's
                // name need not fit a container port's (15 characters, IANA_SVC_NAME).
                ...(ingress ? [] : [{ name: "mesh", containerPort: 15008, protocol: "TCP" }]),
                { name: "metrics", containerPort: METRICS_PORT, protocol: "TCP" },
                { name: "status-port", containerPort: STATUS_PORT, protocol: "TCP" },
              ],
              env: [
                { name: "GATEWAY_NAME", value: gatewayName },
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
      // An ingress gateway is reached from outside the cluster, as Istio's default for class istio.
      type: ingress ? "LoadBalancer" : "ClusterIP",
      selector: { [GATEWAY_NAME_LABEL]: gatewayName },
      ports: servicePorts(gateway),
    },
  };
  const serviceAccount: KubeObject = { apiVersion: "v1", kind: "ServiceAccount", metadata: metadata() };
  return { serviceAccount, deployment, service };
}

/** The status port first, then one port per distinct listener port, named after the listener. */
function servicePorts(gateway: Gateway): NonNullable<Service["spec"]>["ports"] {
  const ports = [
    { name: "status-port", port: STATUS_PORT, targetPort: STATUS_PORT, protocol: "TCP", appProtocol: "tcp" },
  ];
  const seen = new Set<number>([STATUS_PORT]);
  for (const [i, l] of (gateway.spec?.listeners ?? []).entries()) {
    if (typeof l.port !== "number" || seen.has(l.port)) continue;
    seen.add(l.port);
    const protocol = String(l.protocol ?? "TCP").toLowerCase();
    ports.push({
      name: l.name || `${protocol}-${i}`,
      port: l.port,
      targetPort: l.port,
      protocol: "TCP",
      appProtocol: protocol,
    });
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
