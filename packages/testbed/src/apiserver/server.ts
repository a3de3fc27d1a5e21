// startTestApiServer: the pieces wired together behind HTTPS on loopback, a kubeconfig written for
// the real clients, the objects a fresh cluster has (system namespaces, `default` service
// accounts, `kube-root-ca.crt`, the `kubernetes` Service), and restart() that keeps the data and
// the resourceVersion sequence but drops every connection and refuses new ones while down.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPki, type Pki } from "./certs.js";
import { Faults } from "./faults.js";
import { GarbageCollector } from "./gc.js";
import { ObjectService } from "./objects.js";
import type { PodBackends } from "./pod-backends.js";
import { ResourceRegistry, storageKey } from "./resources.js";
import { type RequestRecord, route } from "./router.js";
import { DEFAULT_HISTORY_LIMIT, type KubeObject, ObjectStore } from "./store.js";
import { TokenIssuer } from "./tokens.js";
import { WatchHub } from "./watch.js";

export interface TestApiServerOptions {
  host?: string;
  /** 0 picks a free port; restart() reuses the one bound first. */
  port?: number;
  /** Objects created after the system ones (through the API semantics, in order). */
  objects?: KubeObject[];
  historyLimit?: number;
  bookmarkIntervalMs?: number;
  /** Where the kubeconfig is written; a fresh temporary folder by default. */
  dir?: string;
  /** "cert" (kubeadm's admin.conf) or "token" (a bearer token, as a CI service account has). */
  kubeconfigAuth?: "cert" | "token";
  /** More addresses the serving certificate names (a relay clients reach it through, e.g. from a netns). */
  serverIps?: string[];
}

export interface TestApiServer {
  url: string;
  kubeconfigPath: string;
  caPem: string;
  /** Bearer token with full rights (the kubeconfig's user when kubeconfigAuth is "token"). */
  adminToken: string;
  pki: Pki;
  store: ObjectStore;
  objects: ObjectService;
  registry: ResourceRegistry;
  tokens: TokenIssuer;
  faults: Faults;
  /** Hooks for pods' log and proxy subresources (the kubelet's part). */
  backends: PodBackends;
  requests: RequestRecord[];
  /** Drops every connection and watch, stays down `downtimeMs` (connections refused), comes back. */
  restart(downtimeMs?: number): Promise<void>;
  /** Ends a restart's downtime now (tests wait for the refusal they check, not for a timer). */
  endDowntime(): void;
  stop(): Promise<void>;
}

const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

export async function startTestApiServer(options: TestApiServerOptions = {}): Promise<TestApiServer> {
  const host = options.host ?? "127.0.0.1";
  const pki = await createPki({
    ips: [...new Set([host, "127.0.0.1", ...(options.serverIps ?? [])])],
    dns: ["localhost", "kubernetes", "kubernetes.default.svc"],
  });
  const store = new ObjectStore(options.historyLimit ?? DEFAULT_HISTORY_LIMIT);
  const registry = new ResourceRegistry();
  const objects = new ObjectService(store, registry);
  const gc = new GarbageCollector(objects);
  const watches = new WatchHub(store, {
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
    defaultTimeoutSeconds: 1800,
  });
  const faults = new Faults(watches);
  const tokens = await TokenIssuer.create();
  const backends: PodBackends = {};
  const requests: RequestRecord[] = [];
  const adminToken = randomBytes(24).toString("base64url");
  let port = options.port ?? 0;
  const ctx = {
    objects,
    gc,
    watches,
    tokens,
    backends,
    faults,
    adminToken,
    requests,
    serverAddress: () => `https://${host}:${port}`,
  };

  startNamespaceController(objects, pki.caPem);
  for (const ns of SYSTEM_NAMESPACES)
    objects.create(objects.registry.find("", "v1", "namespaces")!, undefined, { metadata: { name: ns } });
  objects.create(objects.registry.find("", "v1", "services")!, "default", {
    metadata: { name: "kubernetes", labels: { component: "apiserver", provider: "kubernetes" } },
    spec: {
      clusterIP: "10.96.0.1",
      ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: 6443 }],
    },
  });
  for (const obj of options.objects ?? []) {
    const type = registry.byKind(obj.apiVersion, obj.kind);
    if (!type)
      throw new Error(
        `startTestApiServer: no kind ${obj.apiVersion} ${obj.kind} (install its CRD first in the list)`,
      );
    objects.create(type, obj.metadata.namespace ?? (type.namespaced ? "default" : undefined), obj);
  }

  const sockets = new Set<Socket>();
  const makeServer = (): Server => {
    const server = createServer(
      {
        key: pki.serverKeyPem,
        cert: pki.serverCertPem,
        ca: pki.caPem,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => void route(ctx, req, res),
    );
    // Watches are long requests: Node's defaults would cut them (requestTimeout 300 s).
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    // Every accepted connection, not only those through TLS: one still in its handshake when a
    // restart begins would otherwise hold server.close() open (a client retrying at once does that).
    server.on("connection", (s: Socket) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    return server;
  };
  const listen = (server: Server) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  const close = async (server: Server) => {
    watches.closeAll();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  let server = makeServer();
  let endDowntime = () => {};
  let stopped = false;
  await listen(server);
  const url = `https://${host}:${port}`;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "ambient-apiserver-")));
  const ownsDir = options.dir === undefined;
  const kubeconfigPath = join(dir, "kubeconfig");
  await writeFile(
    kubeconfigPath,
    kubeconfig(url, pki, options.kubeconfigAuth === "token" ? { token: adminToken } : undefined),
    { mode: 0o600 },
  );

  return {
    url,
    kubeconfigPath,
    caPem: pki.caPem,
    adminToken,
    pki,
    store,
    objects,
    registry,
    tokens,
    faults,
    backends,
    requests,
    async restart(downtimeMs = 0) {
      // The downtime starts now, so endDowntime() works even before the close has finished.
      let release = () => {};
      const downtime = new Promise<void>((resolve) => {
        release = resolve;
      });
      const timer = setTimeout(release, downtimeMs);
      endDowntime = () => {
        clearTimeout(timer);
        release();
      };
      await close(server);
      await downtime;
      endDowntime = () => {};
      if (stopped) return;
      server = makeServer();
      await listen(server);
    },
    endDowntime() {
      endDowntime();
    },
    async stop() {
      stopped = true;
      endDowntime();
      await close(server);
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** What kube-controller-manager does for each new Namespace that our components read. */
function startNamespaceController(objects: ObjectService, caPem: string): void {
  const saType = objects.registry.find("", "v1", "serviceaccounts")!;
  const cmType = objects.registry.find("", "v1", "configmaps")!;
  objects.store.subscribe((e) => {
    if (e.storage !== "/namespaces" || e.type !== "ADDED") return;
    const ns = e.object.metadata.name!;
    // Deferred: the namespace's own create finishes (and its event is delivered) first.
    queueMicrotask(() => {
      if (!objects.store.get("/namespaces", undefined, ns)) return;
      if (!objects.store.get(storageKey(saType), ns, "default"))
        objects.create(saType, ns, { metadata: { name: "default" } });
      if (!objects.store.get(storageKey(cmType), ns, "kube-root-ca.crt")) {
        objects.create(cmType, ns, {
          metadata: { name: "kube-root-ca.crt" },
          data: { "ca.crt": caPem },
        });
      }
    });
  });
}

function kubeconfig(url: string, pki: Pki, bearer?: { token: string }): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const user = bearer
    ? `    token: ${bearer.token}`
    : `    client-certificate-data: ${b64(pki.clientCertPem)}\n    client-key-data: ${b64(pki.clientKeyPem)}`;
  return `apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: ${url}
    certificate-authority-data: ${b64(pki.caPem)}
users:
- name: admin
  user:
${user}
contexts:
- name: testbed
  context:
    cluster: testbed
    user: admin
    namespace: default
current-context: testbed
`;
}
