// deploy/charts/ambient rendered by the real helm 4 (lint and template, no cluster): what each part
// runs with (strategy, priority, capabilities, files, tokens), least-privilege RBAC, values landing
// where they should, and bad values refused with a message naming the value.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClients } from "../utils/kube.js";
import { CHART, container, envOf, find, type Manifest, offlineHelm, parseManifests } from "./chart.js";

let helm: KubeClients;
beforeAll(async () => {
  helm = await offlineHelm();
});
afterAll(async () => {
  await helm.cleanup();
});

async function render(...args: string[]): Promise<Manifest[]> {
  const r = await helm.helm(["template", "ambient", CHART, "-n", "istio-system", ...args]);
  expect(r.code, r.stderr).toBe(0);
  return parseManifests(r.stdout);
}

async function refused(...args: string[]): Promise<string> {
  const r = await helm.helm(["template", "ambient", CHART, "-n", "istio-system", ...args]);
  expect(r.code, `helm template ${args.join(" ")} was accepted`).not.toBe(0);
  return r.stderr;
}

function volume(workload: Manifest, name: string): Manifest {
  const v = workload.spec.template.spec.volumes.find((x: Manifest) => x.name === name);
  if (!v) throw new Error(`no volume ${name}`);
  return v;
}

function mountOf(workload: Manifest, path: string): Manifest {
  const m = container(workload).volumeMounts.find((x: Manifest) => x.mountPath === path);
  if (!m) throw new Error(`nothing mounted at ${path}`);
  return m;
}

describe("the chart passes helm lint", () => {
  it("the umbrella and each part alone, strictly", async () => {
    for (const dir of [
      CHART,
      ...["base", "istiod", "ztunnel", "cni", "gateway"].map((c) => join(CHART, "charts", c)),
    ]) {
      const r = await helm.helm(["lint", "--strict", dir]);
      expect(r.code, `${dir}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });
});

describe("the rendered objects (defaults)", () => {
  let objects: Manifest[];
  beforeAll(async () => {
    objects = await render();
  });

  it("ztunnel: surge rollout, node-critical, three capabilities, read-only root, no API token", () => {
    const ds = find(objects, "DaemonSet", "ztunnel");
    expect(ds.spec.updateStrategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    const pod = ds.spec.template.spec;
    expect(pod.priorityClassName).toBe("system-node-critical");
    expect(pod.hostNetwork).toBeUndefined();
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(ds.spec.template.metadata.labels).toMatchObject({
      app: "ztunnel",
      "istio.io/dataplane-mode": "none",
    });
    const sc = container(ds).securityContext;
    expect(sc.capabilities.drop).toEqual(["ALL"]);
    expect([...sc.capabilities.add].sort()).toEqual(["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]);
    expect(sc).toMatchObject({
      privileged: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    expect(container(ds).readinessProbe.httpGet).toEqual({ port: 15021, path: "/healthz/ready" });
    expect(pod.tolerations).toEqual(
      expect.arrayContaining([
        { effect: "NoSchedule", operator: "Exists" },
        { effect: "NoExecute", operator: "Exists" },
        { key: "CriticalAddonsOnly", operator: "Exists" },
      ]),
    );
  });

  it("ztunnel: the istio-ca token, the root ConfigMap, the agent's socket folder and Istio's env", () => {
    const ds = find(objects, "DaemonSet", "ztunnel");
    expect(volume(ds, mountOf(ds, "/var/run/secrets/tokens").name).projected.sources).toEqual([
      { serviceAccountToken: { path: "istio-token", audience: "istio-ca", expirationSeconds: 43200 } },
    ]);
    expect(volume(ds, mountOf(ds, "/var/run/secrets/istio").name).configMap).toEqual({
      name: "istio-ca-root-cert",
    });
    expect(volume(ds, mountOf(ds, "/var/run/ztunnel").name).hostPath).toEqual({
      path: "/var/run/ztunnel",
      type: "DirectoryOrCreate",
    });
    const env = envOf(ds);
    expect(env).toMatchObject({
      CA_ADDRESS: "istiod.istio-system.svc:15012",
      XDS_ADDRESS: "istiod.istio-system.svc:15012",
      INPOD_UDS: "/var/run/ztunnel/ztunnel.sock",
      DRAIN_DEADLINE: "29s",
      NODE_NAME: { fieldRef: { fieldPath: "spec.nodeName" } },
      POD_NAME: { fieldRef: { fieldPath: "metadata.name" } },
      POD_NAMESPACE: { fieldRef: { fieldPath: "metadata.namespace" } },
      INSTANCE_IP: { fieldRef: { fieldPath: "status.podIP" } },
      SERVICE_ACCOUNT: { fieldRef: { fieldPath: "spec.serviceAccountName" } },
    });
    expect(ds.spec.template.metadata.annotations).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "15020",
      "prometheus.io/path": "/metrics",
    });
  });

  it("ztunnel has no Kubernetes API access: no role binds its account", () => {
    expect(find(objects, "ServiceAccount", "ztunnel").automountServiceAccountToken).toBe(false);
    const bindings = objects.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding");
    expect(bindings.length).toBeGreaterThan(0);
    for (const b of bindings) {
      for (const s of b.subjects) expect(s.name, `${b.kind}/${b.metadata.name}`).not.toBe("ztunnel");
    }
  });

  it("the CNI agent: host CNI folders, netns with HostToContainer, ztunnel's socket folder, its readiness", () => {
    const ds = find(objects, "DaemonSet", "istio-cni-node");
    expect(ds.spec.updateStrategy.rollingUpdate).toEqual({ maxUnavailable: 1 });
    expect(ds.spec.template.spec.hostNetwork).toBe(true);
    for (const path of [
      "/opt/cni/bin",
      "/etc/cni/net.d",
      "/var/run/netns",
      "/var/run/ztunnel",
      "/var/run/ambient",
    ]) {
      expect(volume(ds, mountOf(ds, path).name).hostPath.path, path).toBe(path);
    }
    expect(mountOf(ds, "/var/run/netns").mountPropagation).toBe("HostToContainer");
    expect(envOf(ds)).toMatchObject({
      NODE_NAME: { fieldRef: { fieldPath: "spec.nodeName" } },
      EXCLUDE_NAMESPACES: "kube-system",
      CNI_BIN_DIR: "/opt/cni/bin",
      CNI_NET_DIR: "/etc/cni/net.d",
      INPOD_UDS: "/var/run/ztunnel/ztunnel.sock",
    });
    expect(container(ds).readinessProbe.httpGet).toEqual({ port: 8000, path: "/readyz" });
    const sc = container(ds).securityContext;
    expect(sc).toMatchObject({ privileged: false, readOnlyRootFilesystem: true });
    expect(sc.capabilities.drop).toEqual(["ALL"]);
    expect(sc.capabilities.add).not.toContain("SYS_PTRACE");
  });

  it("RBAC: the agent reads pods and namespaces, patches pods/status, creates events, reads its DaemonSet; nothing anywhere is a wildcard", () => {
    const cni = find(objects, "ClusterRole", "istio-cni-istio-system");
    expect(cni.rules).toEqual([
      { apiGroups: [""], resources: ["pods", "namespaces"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["pods/status"], verbs: ["patch"] },
      { apiGroups: [""], resources: ["events"], verbs: ["create"] },
      { apiGroups: ["apps"], resources: ["daemonsets"], verbs: ["get"] },
    ]);
    expect(find(objects, "ClusterRoleBinding", "istio-cni-istio-system").subjects).toEqual([
      { kind: "ServiceAccount", name: "istio-cni", namespace: "istio-system" },
    ]);
    for (const role of objects.filter((o) => o.kind === "ClusterRole" || o.kind === "Role")) {
      for (const rule of role.rules) {
        expect([...rule.apiGroups, ...rule.resources, ...rule.verbs], role.metadata.name).not.toContain("*");
        // Secrets: the control plane's root in its own namespace (below), and read-only for the
        // ingress gateways' certificates (the control plane's ClusterRole, below).
        if (role.kind === "ClusterRole" && role.metadata.name === "istiod-istio-system") {
          if (rule.resources.includes("secrets"))
            expect(rule, role.metadata.name).toEqual({
              apiGroups: [""],
              resources: ["secrets"],
              verbs: ["get", "list", "watch"],
            });
        } else if (!(role.kind === "Role" && role.metadata.name === "istiod"))
          expect(rule.resources, role.metadata.name).not.toContain("secrets");
      }
    }
  });

  it("RBAC: the control plane may read only istio-ca-secret and create secrets only in its namespace (the self-signed root)", () => {
    const role = find(objects, "Role", "istiod");
    expect(role.metadata.namespace).toBe("istio-system");
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["istio-ca-secret"], verbs: ["get"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
    ]);
    expect(find(objects, "RoleBinding", "istiod")).toMatchObject({
      roleRef: { kind: "Role", name: "istiod" },
      subjects: [{ kind: "ServiceAccount", name: "istiod", namespace: "istio-system" }],
    });
  });

  it("RBAC: the control plane reviews tokens, publishes the root, reads its kinds, runs waypoints and ingress gateways", () => {
    const rules: Manifest[] = find(objects, "ClusterRole", "istiod-istio-system").rules;
    const can = (group: string, resource: string, verb: string) =>
      rules.some(
        (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
      );
    expect(can("authentication.k8s.io", "tokenreviews", "create")).toBe(true);
    expect(can("", "configmaps", "create") && can("", "configmaps", "patch")).toBe(true);
    for (const [group, resource] of [
      ["", "pods"],
      ["", "namespaces"],
      ["", "nodes"],
      ["", "services"],
      ["", "serviceaccounts"],
      ["", "secrets"],
      ["security.istio.io", "authorizationpolicies"],
      ["security.istio.io", "peerauthentications"],
      ["security.istio.io", "requestauthentications"],
      ["networking.istio.io", "virtualservices"],
      ["networking.istio.io", "destinationrules"],
      ["networking.istio.io", "serviceentries"],
      ["networking.istio.io", "workloadentries"],
      ["networking.istio.io", "gateways"],
      ["gateway.networking.k8s.io", "gateways"],
      ["gateway.networking.k8s.io", "httproutes"],
      ["gateway.networking.k8s.io", "grpcroutes"],
      ["gateway.networking.k8s.io", "tlsroutes"],
      ["gateway.networking.k8s.io", "tcproutes"],
    ] as const) {
      expect(can(group, resource, "watch"), `${group}/${resource}`).toBe(true);
    }
    for (const verb of ["create", "patch", "delete"]) {
      expect(
        can("apps", "deployments", verb) && can("", "services", verb) && can("", "serviceaccounts", verb),
      ).toBe(true);
    }
    expect(can("gateway.networking.k8s.io", "gateways/status", "patch")).toBe(true);
    expect(can("gateway.networking.k8s.io", "gatewayclasses", "create")).toBe(true);
    // TLS certificates are read, never written; Istio's Gateways too.
    expect(can("", "secrets", "create") || can("", "secrets", "patch")).toBe(false);
    expect(can("networking.istio.io", "gateways", "patch")).toBe(false);
    // Route status (parents: Accepted, ResolvedRefs); the routes themselves stay read-only.
    for (const routes of ["httproutes", "grpcroutes", "tlsroutes", "tcproutes"]) {
      expect(can("gateway.networking.k8s.io", `${routes}/status`, "patch"), routes).toBe(true);
      expect(can("gateway.networking.k8s.io", routes, "patch"), routes).toBe(false);
    }
    // istio.io/WaypointBound on ServiceEntries; the entries themselves stay read-only.
    expect(can("networking.istio.io", "serviceentries/status", "patch")).toBe(true);
    expect(can("networking.istio.io", "serviceentries", "patch")).toBe(false);
    expect(can("networking.istio.io", "workloadentries/status", "patch")).toBe(false);
    expect(can("", "pods/status", "patch")).toBe(false);
    expect(can("", "pods", "patch")).toBe(false);
  });

  it("istiod: Service istiod on 15012 and 15014, ready on /ready, scraped, a PDB over its pods, hardened, requests set everywhere", () => {
    const svc = find(objects, "Service", "istiod");
    expect(svc.spec.ports).toEqual([
      { name: "grpc-xds-tls", port: 15012, targetPort: 15012, protocol: "TCP" },
      { name: "http-monitoring", port: 15014, targetPort: 15014, protocol: "TCP" },
    ]);
    const deploy = find(objects, "Deployment", "istiod");
    expect(container(deploy).readinessProbe.httpGet).toEqual({ port: 15014, path: "/ready" });
    expect(deploy.spec.template.metadata.annotations).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "15014",
    });
    const podLabels = deploy.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(podLabels[k]).toBe(v);
    const pdb = find(objects, "PodDisruptionBudget", "istiod");
    expect(pdb.spec.maxUnavailable).toBe(1);
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) expect(podLabels[k]).toBe(v);
    expect(container(deploy).securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(deploy.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    expect(envOf(deploy)).toMatchObject({ CA_TRUSTED_NODE_ACCOUNTS: "istio-system/ztunnel" });
    for (const w of objects.filter((o) => o.kind === "DaemonSet" || o.kind === "Deployment")) {
      expect(container(w).resources.requests, w.metadata.name).toMatchObject({
        cpu: expect.anything(),
        memory: expect.anything(),
      });
      expect(container(w).image, w.metadata.name).toMatch(/^localhost\/ambient\/[a-z]+:0\.1\.0$/);
    }
  });

  it("the CRDs are the generated files, kept on uninstall", () => {
    const crds = objects.filter((o) => o.kind === "CustomResourceDefinition");
    const files = readdirSync(join(CHART, "charts", "base", "files", "crds")).map((f) =>
      f.replace(/\.yaml$/, ""),
    );
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(files.sort());
    for (const c of crds) expect(c.metadata.annotations["helm.sh/resource-policy"]).toBe("keep");
  });
});

describe("values land where they should", () => {
  it("global.hub and global.tag set every image; a part's own hub or tag wins for that part", async () => {
    const objects = await render(
      "--set",
      "global.hub=registry.example/mesh",
      "--set",
      "global.tag=1.2.3",
      "--set",
      "ztunnel.tag=1.2.4",
    );
    expect(container(find(objects, "DaemonSet", "ztunnel")).image).toBe(
      "registry.example/mesh/ztunnel:1.2.4",
    );
    expect(container(find(objects, "DaemonSet", "istio-cni-node")).image).toBe(
      "registry.example/mesh/cni:1.2.3",
    );
    expect(container(find(objects, "Deployment", "istiod")).image).toBe(
      "registry.example/mesh/controlplane:1.2.3",
    );
    // The waypoint pods the control plane creates come from the same registry and release.
    expect(envOf(find(objects, "Deployment", "istiod"))).toMatchObject({
      WAYPOINT_IMAGE: "registry.example/mesh/waypoint:1.2.3",
    });
  });

  it("cni.excludeNamespaces, resources, tolerations, grace period and log level", async () => {
    const objects = await render(
      "--set",
      "cni.excludeNamespaces={kube-system,legacy}",
      "--set",
      "ztunnel.resources.requests.cpu=1",
      "--set",
      "ztunnel.resources.limits.memory=1Gi",
      "--set",
      "ztunnel.tolerations[0].key=dedicated",
      "--set",
      "ztunnel.tolerations[0].operator=Exists",
      "--set",
      "ztunnel.terminationGracePeriodSeconds=60",
      "--set",
      "global.logLevel=debug",
      "--set",
      "cni.logLevel=warn",
    );
    const cni = find(objects, "DaemonSet", "istio-cni-node");
    const ztunnel = find(objects, "DaemonSet", "ztunnel");
    expect(envOf(cni)).toMatchObject({ EXCLUDE_NAMESPACES: "kube-system,legacy", LOG_LEVEL: "warn" });
    expect(container(ztunnel).resources).toEqual({
      requests: { cpu: 1, memory: "256Mi" },
      limits: { memory: "1Gi" },
    });
    expect(ztunnel.spec.template.spec.tolerations).toEqual([{ key: "dedicated", operator: "Exists" }]);
    expect(ztunnel.spec.template.spec.terminationGracePeriodSeconds).toBe(60);
    expect(envOf(ztunnel)).toMatchObject({ DRAIN_DEADLINE: "59s", LOG_LEVEL: "debug" });
  });

  it("DNS capture: off by default; cni.ambient.dnsCapture turns on the agent's, ztunnel.env its DNS proxy", async () => {
    const off = await render();
    expect(envOf(find(off, "DaemonSet", "istio-cni-node"))).toMatchObject({ AMBIENT_DNS_CAPTURE: "false" });
    const on = await render(
      "--set",
      "cni.ambient.dnsCapture=true",
      "--set-string",
      "ztunnel.env.ISTIO_META_DNS_CAPTURE=true",
    );
    expect(envOf(find(on, "DaemonSet", "istio-cni-node"))).toMatchObject({ AMBIENT_DNS_CAPTURE: "true" });
    expect(envOf(find(on, "DaemonSet", "ztunnel"))).toMatchObject({ ISTIO_META_DNS_CAPTURE: "true" });
    expect(await refused("--set", "cni.ambient.dnsCaptur=true")).toMatch(/dnsCaptur/);
  });

  it("several replicas without a plugged-in CA render (they share the root in istio-ca-secret)", async () => {
    expect(find(await render("--set", "istiod.replicaCount=3"), "Deployment", "istiod").spec.replicas).toBe(
      3,
    );
  });

  it("a plugged-in CA is mounted and named with --ca-dir, with several replicas", async () => {
    const objects = await render(
      "--set",
      "istiod.pluggedCA.secretName=cacerts",
      "--set",
      "istiod.replicaCount=2",
    );
    const deploy = find(objects, "Deployment", "istiod");
    expect(deploy.spec.replicas).toBe(2);
    expect(container(deploy).args).toEqual(["--ca-dir=/etc/cacerts"]);
    expect(volume(deploy, mountOf(deploy, "/etc/cacerts").name).secret).toEqual({ secretName: "cacerts" });
  });

  it("parts can be left out; Gateway API CRDs can be left to the cluster", async () => {
    const objects = await render("--set", "cni.enabled=false", "--set", "base.gatewayAPI.crds=Never");
    expect(objects.some((o) => o.metadata.name === "istio-cni-node")).toBe(false);
    const crds = objects.filter((o) => o.kind === "CustomResourceDefinition").map((c) => c.spec.group);
    expect(crds).not.toContain("gateway.networking.k8s.io");
    expect(crds).toContain("security.istio.io");
  });

  it("the ingress gateway: off by default; on, a Deployment Istio Gateways select, never captured", async () => {
    expect((await render()).some((o) => o.metadata.name === "istio-ingressgateway")).toBe(false);
    const objects = await render("--set", "gateway.enabled=true");
    const deploy = find(objects, "Deployment", "istio-ingressgateway");
    expect(deploy.spec.template.metadata.labels).toMatchObject({
      istio: "ingressgateway",
      "istio.io/dataplane-mode": "none",
      "sidecar.istio.io/inject": "false",
    });
    const c = container(deploy);
    expect(c.image).toBe("localhost/ambient/waypoint:0.1.0");
    expect(c.args.slice(0, 1)).toEqual(["--ingress"]);
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, capabilities: { drop: ["ALL"] } });
    expect(deploy.spec.template.spec.securityContext.sysctls).toEqual([
      { name: "net.ipv4.ip_unprivileged_port_start", value: "0" },
    ]);
    expect(envOf(deploy)).toMatchObject({
      GATEWAY_NAME: "istio-ingressgateway",
      XDS_ADDRESS: "istiod.istio-system.svc:15012",
    });
    expect(deploy.spec.template.spec.serviceAccountName).toBe("istio-ingressgateway");
    const svc = find(objects, "Service", "istio-ingressgateway");
    expect(svc.spec.type).toBe("LoadBalancer");
    expect(svc.spec.selector).toEqual({ istio: "ingressgateway", app: "istio-ingressgateway" });
    expect(svc.spec.ports.map((p: Manifest) => p.port)).toEqual([15021, 80, 443]);
    // Installed alone, as Istio's gateway chart: named after the release.
    const r = await helm.helm(["template", "edge", join(CHART, "charts", "gateway"), "-n", "istio-ingress"]);
    expect(r.code, r.stderr).toBe(0);
    expect(find(parseManifests(r.stdout), "Deployment", "edge").metadata.namespace).toBe("istio-ingress");
  });

  it("a part installed alone takes its own hub and tag (as Istio's charts)", async () => {
    const r = await helm.helm(["template", "z", join(CHART, "charts", "ztunnel"), "--set", "tag=2.0.0"]);
    expect(r.code, r.stderr).toBe(0);
    expect(container(find(parseManifests(r.stdout), "DaemonSet", "ztunnel")).image).toBe(
      "localhost/ambient/ztunnel:2.0.0",
    );
  });
});

describe("bad values are refused with a message naming them", () => {
  it("unknown or misplaced keys (tag belongs in global)", async () => {
    expect(await refused("--set", "tag=1.0")).toMatch(/additional properties 'tag' not allowed/);
    expect(await refused("--set", "ztunnel.resource.requests.cpu=1")).toMatch(
      /ztunnel:[\s\S]*'resource' not allowed/,
    );
  });

  it("a log level, a namespace name, a grace period, a tag", async () => {
    expect(await refused("--set", "ztunnel.logLevel=loud")).toMatch(/ztunnel:[\s\S]*\/logLevel/);
    expect(await refused("--set", "cni.excludeNamespaces={Bad_NS}")).toMatch(
      /cni:[\s\S]*\/excludeNamespaces\/0/,
    );
    expect(await refused("--set", "ztunnel.terminationGracePeriodSeconds=1")).toMatch(
      /\/terminationGracePeriodSeconds/,
    );
    expect(await refused("--set", "global.tag=a b")).toMatch(/\/global\/tag/);
    expect(await refused("--set", "gateway.enabled=true", "--set", "gateway.service.type=Public")).toMatch(
      /gateway:[\s\S]*\/service\/type/,
    );
  });
});
