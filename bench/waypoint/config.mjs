// What every process of the waypoint benchmark shares: the loopback addresses, the one routing
// rule set all paths apply (end-user: jason → v2, everyone else 90/10 v1/v2) and the manifests
// folder the mesh paths (full, split) run on. The VirtualService object here is both written for the mesh and compiled
// in-process by the routing-core proxy, so the two cannot drift apart.

export const NAMESPACE = "demo";
export const NODE_A = { name: "node-a", ip: "127.31.1.1" };
export const NODE_B = { name: "node-b", ip: "127.31.2.1" };
/** The client pod (node-a): the load binds its address on every path, and uses its SOCKS5 listener. */
export const CLIENT_IP = "127.31.1.10";
export const SOCKS = { host: CLIENT_IP, port: 15080 };
/** Fixed by the Gateway's spec.addresses; its pod lands on node-a (local mode takes the first Node). */
export const WAYPOINT_IP = "127.31.1.40";
/** The waypoint's Service (run.mjs writes it out for the split path's control plane; see there). */
export const WAYPOINT_VIP = "127.31.100.40";
/** The two "pods" of reviews (node-b): the benchmark's own servers listen here, not LocalMesh's echo. */
export const V1 = { host: "127.31.2.10", port: 9080 };
export const V2 = { host: "127.31.2.11", port: 9080 };
export const SERVICE = { host: "reviews.demo.svc.cluster.local", vip: "127.31.100.1", port: 9080 };
/** The three single-process proxies the load can target instead of the mesh. */
export const CORE = { host: "127.31.3.10", port: 9080 };
export const NGINX = { host: "127.31.3.20", port: 9080 };
export const HAPROXY = { host: "127.31.3.30", port: 9080 };

export const VIRTUAL_SERVICE = {
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name: "reviews", namespace: NAMESPACE },
  spec: {
    hosts: ["reviews"],
    http: [
      {
        match: [{ headers: { "end-user": { exact: "jason" } } }],
        route: [{ destination: { host: "reviews", subset: "v2" } }],
      },
      {
        route: [
          { destination: { host: "reviews", subset: "v1" }, weight: 90 },
          { destination: { host: "reviews", subset: "v2" }, weight: 10 },
        ],
      },
    ],
  },
};

/** A manifest file's text: JSON documents (JSON is YAML too), "---" between them. */
export function yamlDocuments(objects) {
  return objects.map((o) => JSON.stringify(o, null, 2)).join("\n---\n") + "\n";
}

/** The manifests folder of the mesh paths: file name → the objects in it. */
export function manifestObjects() {
  const node = ({ name, ip }) => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: { name },
    status: { addresses: [{ type: "InternalIP", address: ip }] },
  });
  // No containerPorts: LocalMesh would otherwise start its echo server on the pod's address.
  const pod = (name, node, ip, sa, labels) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NAMESPACE, labels },
    spec: { nodeName: node, serviceAccountName: sa, containers: [{ name: "app", image: "app" }] },
    status: { phase: "Running", podIP: ip },
  });
  return {
    "00-mesh.yaml": [
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: {
          name: NAMESPACE,
          labels: { "istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint" },
        },
      },
      node(NODE_A),
      node(NODE_B),
      pod("client", NODE_A.name, CLIENT_IP, "client", { app: "client" }),
      pod("reviews-v1", NODE_B.name, V1.host, "reviews", { app: "reviews", version: "v1" }),
      pod("reviews-v2", NODE_B.name, V2.host, "reviews", { app: "reviews", version: "v2" }),
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "reviews", namespace: NAMESPACE },
        spec: {
          clusterIP: SERVICE.vip,
          selector: { app: "reviews" },
          // Numeric targetPort: the pods declare no container ports to name.
          ports: [{ name: "http", port: SERVICE.port, targetPort: V1.port }],
        },
      },
    ],
    "10-waypoint.yaml": [
      {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "Gateway",
        metadata: { name: "waypoint", namespace: NAMESPACE },
        spec: {
          gatewayClassName: "istio-waypoint",
          addresses: [{ value: WAYPOINT_IP }],
          listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
        },
      },
    ],
    "20-destination-rule.yaml": [
      {
        apiVersion: "networking.istio.io/v1",
        kind: "DestinationRule",
        metadata: { name: "reviews", namespace: NAMESPACE },
        spec: {
          host: "reviews",
          subsets: [
            { name: "v1", labels: { version: "v1" } },
            { name: "v2", labels: { version: "v2" } },
          ],
        },
      },
    ],
    "30-virtual-service.yaml": [VIRTUAL_SERVICE],
  };
}
