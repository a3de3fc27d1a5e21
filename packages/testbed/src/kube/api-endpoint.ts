// The API server as the netns cluster's nodes reach it: an address on the switch's bridge (the node
// link, 198.18.0.2:6443, as a control-plane node would have) whose connections this process relays
// to the test API server on the host's loopback. Node netns cannot reach the host's loopback, and
// the API server stays in this process so tests can inject its faults and restarts. While the API
// server is down, a relayed connection is reset at once, as a refused connect would be.

import { createConnection, createServer, type Server, type Socket } from "node:net";
import { Netns } from "@ambient/netns";
import { ip } from "../netns/exec.js";
import type { Topology } from "../netns/topology.js";

/** On the node link's /24 (nodes are .11 and up), below the nodes. */
export const API_ENDPOINT_IP = "198.18.0.2";
/** kube-apiserver's secure port. */
export const API_ENDPOINT_PORT = 6443;

export class ApiEndpoint {
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  static async start(topology: Topology, target: { host: string; port: number }): Promise<ApiEndpoint> {
    await ip("-n", topology.switchNetns, "addr", "add", `${API_ENDPOINT_IP}/24`, "dev", topology.bridge);
    // Pods off the host network (the chart's istiod) dial it from their pod IPs: the answers go back
    // through the pod's node, as on a flat L3 cluster network.
    for (const node of topology.nodes)
      await ip("-n", topology.switchNetns, "route", "add", node.podCidr, "via", node.ip);
    const ns = Netns.open(topology.switchNetnsPath);
    let fd: number;
    try {
      fd = ns.listen(API_ENDPOINT_IP, API_ENDPOINT_PORT);
    } finally {
      ns.close();
    }
    const server = createServer({ pauseOnConnect: false });
    const endpoint = new ApiEndpoint(server);
    server.on("connection", (client) => endpoint.relay(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ fd }, () => resolve());
    });
    return endpoint;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: Socket, target: { host: string; port: number }): void {
    const upstream = createConnection(target);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.resetAndDestroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }
}
