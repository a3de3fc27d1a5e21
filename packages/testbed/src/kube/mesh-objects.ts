// The mesh's own objects, shaped as Istio's charts make them: namespace istio-system, the service
// accounts, the control plane's pod behind Service `istiod` (15012), and per node a ztunnel pod
// (`app: ztunnel`, the projected `istio-token` for audience istio-ca, the root ConfigMap, Istio's
// env from the downward API) and, with network namespaces, a CNI agent pod. The pods are created
// directly, one per node, with names the harness and its tests know (`ztunnel-<node>`); DaemonSet
// `ztunnel` selects them and the DaemonSet controller adopts them (their pod-template-generation
// label marks them as its first template), so it makes no second set, and a change to the
// DaemonSet's template rolls them as on a cluster.
// Differences from the charts, because every "pod" here shares a node's network: the control plane
// and ztunnel run with hostNetwork (the control plane on the first node's address).

import type { KubeObject } from "@ambient/kube";
import { TEMPLATE_GENERATION } from "./controllers/controller-revisions.js";
import { IMAGES, PROXY_ROOT_CERT_FILE, PROXY_TOKEN_FILE } from "./runtime.js";

export const MESH_NAMESPACE = "istio-system";
/** The CA audience of the proxies' projected token (Istio's `istio-token`). */
const CA_AUDIENCE = "istio-ca";
/** Istio's chart: 43200 s. */
const PROXY_TOKEN_SECONDS = 43_200;
const TAG = "dev";
/** istiod's Service names its certificate carries; proxies check this one when they dial an IP. */
export const CONTROL_PLANE_SAN = "istiod.istio-system.svc";
export const CONTROL_PLANE_TLS_PORT = 15012;
/** Where the control plane's pod keeps its CA (istiod keeps it in Secret istio-ca-secret). */
export const CONTROL_PLANE_STATE_DIR = "/var/lib/istio/ca";
/** The label of the CNI agent's pods here (Istio's chart sets it too; ours sets `app`). */
const CNI_POD_LABEL = { key: "k8s-app", value: "istio-cni-node" } as const;

/**
 * The CNI agent's pods, which the kubelet waits for before other pods (Istio's not-ready taint):
 * these, or those of deploy/charts/ambient (`app: istio-cni-node`, as Istio's chart labels them too).
 */
export function isCniAgentPod(pod: { metadata: { labels?: Record<string, string> } }): boolean {
  const labels = pod.metadata.labels ?? {};
  return labels[CNI_POD_LABEL.key] === CNI_POD_LABEL.value || labels.app === CNI_POD_LABEL.value;
}

/** The node folders the pods share (hostPath volumes; the kubelet maps each per node, node-paths.ts). */
const NODE_PATHS = {
  /** The agent's socket for ztunnel. */
  ztunnelDir: "/var/run/ztunnel",
  /** The CNI plugin's socket to the agent, and the agent's state. */
  cniRunDir: "/var/run/istio-cni",
  cniBinDir: "/opt/cni/bin",
  cniConfDir: "/etc/cni/net.d",
} as const;

export interface MeshObjectsOptions {
  nodes: readonly { name: string; ip: string }[];
  /** With network namespaces: a CNI agent per node, ztunnel in in-pod mode. */
  netns: boolean;
  logLevel: string;
}

const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const POD_ENV = [
  fieldEnv("NODE_NAME", "spec.nodeName"),
  fieldEnv("POD_NAME", "metadata.name"),
  fieldEnv("POD_NAMESPACE", "metadata.namespace"),
  fieldEnv("INSTANCE_IP", "status.podIP"),
  fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
];

const meta = (name: string, labels: Record<string, string> = {}) => ({
  name,
  namespace: MESH_NAMESPACE,
  labels: { ...labels, "istio.io/dataplane-mode": "none" },
});

export function controlPlaneAddress(o: Pick<MeshObjectsOptions, "nodes">): string {
  return `${o.nodes[0]!.ip}:${CONTROL_PLANE_TLS_PORT}`;
}

export function meshObjects(o: MeshObjectsOptions): KubeObject[] {
  const out: KubeObject[] = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: MESH_NAMESPACE } },
    ...["istiod", "ztunnel", ...(o.netns ? ["istio-cni"] : [])].map((name) => ({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name, namespace: MESH_NAMESPACE },
    })),
    controlPlanePod(o),
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "istiod", namespace: MESH_NAMESPACE, labels: { app: "istiod" } },
      spec: {
        selector: { app: "istiod" },
        ports: [
          {
            name: "https-dns",
            port: CONTROL_PLANE_TLS_PORT,
            targetPort: CONTROL_PLANE_TLS_PORT,
            protocol: "TCP",
          },
        ],
      },
    },
  ];
  out.push(ztunnelDaemonSet(o));
  for (const node of o.nodes) {
    out.push(ztunnelPod(o, node.name));
    if (o.netns) out.push(cniPod(o, node.name));
  }
  return out;
}

function controlPlanePod(o: MeshObjectsOptions): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: meta("istiod", { app: "istiod", istio: "pilot" }),
    spec: {
      nodeName: o.nodes[0]!.name,
      serviceAccountName: "istiod",
      hostNetwork: true,
      containers: [
        {
          name: "discovery",
          image: `${IMAGES.controlplane}:${TAG}`,
          args: ["--state-dir", CONTROL_PLANE_STATE_DIR, "--log-level", o.logLevel],
          env: [
            fieldEnv("POD_NAMESPACE", "metadata.namespace"),
            fieldEnv("POD_IP", "status.podIP"),
            // On its pod's address only: every node shares this machine's network (loopback mode).
            { name: "AMBIENT_TLS_LISTEN", value: `$(POD_IP):${CONTROL_PLANE_TLS_PORT}` },
            { name: "AMBIENT_SERVING_IPS", value: "$(POD_IP)" },
            { name: "AMBIENT_MONITORING_LISTEN", value: "$(POD_IP):15014" },
          ],
          ports: [{ name: "grpc-xds-tls", containerPort: CONTROL_PLANE_TLS_PORT }],
          volumeMounts: [{ name: "ca", mountPath: CONTROL_PLANE_STATE_DIR }],
        },
      ],
      volumes: [{ name: "ca", emptyDir: {} }],
    },
  };
}

/** The DaemonSet Istio's ztunnel chart installs; its pods here are ztunnelPod's (same labels and spec). */
function ztunnelDaemonSet(o: MeshObjectsOptions): KubeObject {
  const first = ztunnelPod(o, o.nodes[0]!.name);
  const { nodeName: _node, ...podSpec } = first.spec as Record<string, unknown>;
  const { [TEMPLATE_GENERATION]: _generation, ...labels } = first.metadata.labels ?? {};
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "ztunnel", namespace: MESH_NAMESPACE, labels: { app: "ztunnel" } },
    spec: {
      selector: { matchLabels: { app: "ztunnel" } },
      template: { metadata: { labels }, spec: podSpec },
    },
  };
}

function ztunnelPod(o: MeshObjectsOptions, node: string): KubeObject {
  const paths = NODE_PATHS;
  return {
    apiVersion: "v1",
    kind: "Pod",
    // The DaemonSet controller adopts these pods as its own: this label says they run its first template.
    metadata: meta(`ztunnel-${node}`, { app: "ztunnel", [TEMPLATE_GENERATION]: "1" }),
    spec: {
      nodeName: node,
      serviceAccountName: "ztunnel",
      hostNetwork: true,
      priorityClassName: "system-node-critical",
      terminationGracePeriodSeconds: 30,
      containers: [
        {
          name: "istio-proxy",
          image: `${IMAGES.ztunnel}:${TAG}`,
          args: ["--log-level", o.logLevel],
          env: [
            ...POD_ENV,
            { name: "CA_ADDRESS", value: controlPlaneAddress(o) },
            { name: "XDS_ADDRESS", value: controlPlaneAddress(o) },
            // The address is the control plane pod's IP; its certificate names the Service.
            { name: "CONTROL_PLANE_SAN", value: CONTROL_PLANE_SAN },
            ...(o.netns ? [{ name: "INPOD_UDS", value: "/var/run/ztunnel/ztunnel.sock" }] : []),
          ],
          readinessProbe: { httpGet: { path: "/healthz/ready", port: 15021 } },
          volumeMounts: [
            { name: "istio-token", mountPath: dirOf(PROXY_TOKEN_FILE) },
            { name: "istiod-ca-cert", mountPath: dirOf(PROXY_ROOT_CERT_FILE) },
            { name: "cni-ztunnel-sock-dir", mountPath: "/var/run/ztunnel" },
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
                  audience: CA_AUDIENCE,
                  expirationSeconds: PROXY_TOKEN_SECONDS,
                  path: "istio-token",
                },
              },
            ],
          },
        },
        { name: "istiod-ca-cert", configMap: { name: "istio-ca-root-cert" } },
        { name: "cni-ztunnel-sock-dir", hostPath: { path: paths.ztunnelDir, type: "DirectoryOrCreate" } },
      ],
    },
  };
}

function cniPod(o: MeshObjectsOptions, node: string): KubeObject {
  const paths = NODE_PATHS;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: meta(`istio-cni-node-${node}`, { [CNI_POD_LABEL.key]: CNI_POD_LABEL.value }),
    spec: {
      nodeName: node,
      serviceAccountName: "istio-cni",
      hostNetwork: true,
      priorityClassName: "system-node-critical",
      containers: [
        {
          name: "install-cni",
          image: `${IMAGES.cni}:${TAG}`,
          args: [
            "--cni-bin-dir",
            "/host/opt/cni/bin",
            "--cni-conf-dir",
            "/host/etc/cni/net.d",
            "--cni-socket",
            "/var/run/istio-cni/cni.sock",
            "--ztunnel-socket",
            "/var/run/ztunnel/ztunnel.sock",
            "--state-dir",
            "/var/run/istio-cni/agent",
            "--log-level",
            o.logLevel,
          ],
          // No POD_NAMESPACE: no DaemonSet owns these pods, and the agent would take its absence for
          // an uninstall and unchain the plugin while the cluster's pods are still being torn down.
          env: [fieldEnv("NODE_NAME", "spec.nodeName")],
          readinessProbe: { httpGet: { path: "/readyz", port: 8000 } },
          volumeMounts: [
            { name: "cni-bin-dir", mountPath: "/host/opt/cni/bin" },
            { name: "cni-net-dir", mountPath: "/host/etc/cni/net.d" },
            { name: "cni-socket-dir", mountPath: "/var/run/istio-cni" },
            { name: "cni-ztunnel-sock-dir", mountPath: "/var/run/ztunnel" },
          ],
        },
      ],
      volumes: [
        { name: "cni-bin-dir", hostPath: { path: paths.cniBinDir } },
        { name: "cni-net-dir", hostPath: { path: paths.cniConfDir } },
        { name: "cni-socket-dir", hostPath: { path: paths.cniRunDir, type: "DirectoryOrCreate" } },
        { name: "cni-ztunnel-sock-dir", hostPath: { path: paths.ztunnelDir, type: "DirectoryOrCreate" } },
      ],
    },
  };
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}
