// kube-proxy and cluster DNS for the loopback cluster, for the mesh's own components: a container
// that dials a Service by name (ztunnel's CA_ADDRESS, `istiod.istio-system.svc:15012`) is given a
// stable address on the service network (`<net>.0.<n>`, one per Service port) where a relay takes
// each connection to a Ready pod behind the Service, chosen at connect time as kube-proxy's rules
// would. So a control plane rolled to a new pod (a new 127.x address) is reached without restarting
// its clients. Pods' apps need none of it: enrolled ones reach Services through ztunnel's SOCKS5.

import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { Logger } from "@ambient/core";
import type { KubeClient } from "./client.js";

/** `<service>.<namespace>.svc[.cluster.local]`: the names cluster DNS answers for a Service. */
const SERVICE_NAME_RE = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?$/;

interface ServicePort {
  port: number;
  targetPort?: number | string;
}
interface ServiceObject {
  spec?: { selector?: Record<string, string>; ports?: ServicePort[] };
}
interface PodObject {
  metadata: { deletionTimestamp?: string };
  spec?: { containers?: { ports?: { name?: string; containerPort: number }[] }[] };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

export class LoopbackServices {
  private readonly relays = new Map<string, Promise<{ server: Server; address: string }>>();
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly client: KubeClient,
    /** The service network's first three octets (`127.30.0`). */
    private readonly net: string,
    private readonly logger: Logger,
  ) {}

  /**
   * `host:port` as a container dials it: a Service name becomes its relay's address, anything
   * else is returned as it is.
   */
  async resolve(hostPort: string): Promise<string> {
    const colon = hostPort.lastIndexOf(":");
    const host = hostPort.slice(0, colon);
    const port = Number(hostPort.slice(colon + 1));
    const m = SERVICE_NAME_RE.exec(host);
    if (colon < 0 || !m || !Number.isInteger(port)) return hostPort;
    const key = `${m[2]}/${m[1]}:${port}`;
    let relay = this.relays.get(key);
    if (!relay) {
      relay = this.listen(m[2]!, m[1]!, port, `${this.net}.${this.relays.size + 1}`);
      this.relays.set(key, relay);
    }
    return `${(await relay).address}:${port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const relays = await Promise.allSettled(this.relays.values());
    this.relays.clear();
    await Promise.all(
      relays.map((r) =>
        r.status === "fulfilled" ? new Promise((done) => r.value.server.close(done)) : undefined,
      ),
    );
  }

  private async listen(
    namespace: string,
    name: string,
    port: number,
    ip: string,
  ): Promise<{ server: Server; address: string }> {
    const server = createServer((client) => void this.relay(client, namespace, name, port));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, ip, () => resolve());
    });
    this.logger.info(
      { service: `${namespace}/${name}`, address: `${ip}:${port}` },
      "service relay listening",
    );
    return { server, address: ip };
  }

  private async relay(client: Socket, namespace: string, name: string, port: number): Promise<void> {
    this.track(client);
    client.on("error", () => {});
    try {
      const target = await this.endpoint(namespace, name, port);
      const upstream = createConnection({ host: target.ip, port: target.port });
      this.track(upstream);
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.pipe(upstream).pipe(client);
    } catch (err) {
      // As a Service without ready endpoints: the connection is refused (kube-proxy's REJECT).
      this.logger.debug({ service: `${namespace}/${name}`, err: (err as Error).message }, "no endpoint");
      client.destroy();
    }
  }

  /** A Ready pod selected by the Service, and the port its Service port targets. */
  private async endpoint(
    namespace: string,
    name: string,
    port: number,
  ): Promise<{ ip: string; port: number }> {
    const svc = await this.client.get<ServiceObject>(`/api/v1/namespaces/${namespace}/services/${name}`);
    const sp = svc?.spec?.ports?.find((p) => p.port === port);
    const selector = svc?.spec?.selector;
    if (!sp || !selector) throw new Error(`service ${namespace}/${name} has no port ${port} with a selector`);
    const labelSelector = Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const pods = await this.client.request<{ items: PodObject[] }>(
      "GET",
      `/api/v1/namespaces/${namespace}/pods`,
      undefined,
      { query: { labelSelector } },
    );
    const ready = pods.items.filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        p.status?.podIP &&
        p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    );
    const pod = ready[Math.floor(Math.random() * ready.length)];
    if (!pod) throw new Error(`service ${namespace}/${name} has no Ready endpoint`);
    return { ip: pod.status!.podIP!, port: targetPort(pod, sp) };
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
  }
}

function targetPort(pod: PodObject, sp: ServicePort): number {
  if (typeof sp.targetPort === "number") return sp.targetPort;
  if (typeof sp.targetPort === "string" && sp.targetPort !== "") {
    for (const c of pod.spec?.containers ?? [])
      for (const p of c.ports ?? []) if (p.name === sp.targetPort) return p.containerPort;
  }
  return sp.port;
}
