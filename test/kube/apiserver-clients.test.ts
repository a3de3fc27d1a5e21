// The test API server driven by the REAL kubectl 1.35 and helm 4, as a user would: apply a
// folder (namespaces, pods, services) and a CRD with its custom objects, get (wide, yaml, watch),
// label, annotate, delete, create token, logs and the pod proxy through test hooks, get --raw,
// and a chart installed, upgraded (server-side apply) and uninstalled. No --validate=false.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";

const MANIFESTS = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  nodeName: node-1
  containers:
  - name: web
    image: nginx
    ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`;

const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: authorizationpolicies.security.istio.io
spec:
  group: security.istio.io
  scope: Namespaced
  names: {plural: authorizationpolicies, singular: authorizationpolicy, kind: AuthorizationPolicy, shortNames: [ap]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Action, type: string, jsonPath: .spec.action}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`;

const POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: demo}
spec:
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/demo/sa/sleep"]}}]}]
`;

const CHART = {
  "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
  "values.yaml": "greeting: hello\nwithService: true\n",
  "templates/all.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
{{- if .Values.withService }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-svc
spec:
  selector: {app: web}
  ports: [{port: 80}]
{{- end }}
`,
};

describe("the test API server with the real kubectl and helm", () => {
  let server: TestApiServer;
  let clients: KubeClients;
  let dir: TempDir;

  beforeAll(async () => {
    server = await startTestApiServer();
    clients = await kubeClients(server.kubeconfigPath);
    dir = await tempDir("ambient-kube-");
    server.backends.log = async (pod, o) =>
      `log of ${pod.metadata.namespace}/${pod.metadata.name} container ${o.container}\n`;
    server.backends.proxy = async (pod, port, path, _req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`proxied to ${(pod.status as { podIP: string }).podIP}:${port}${path}`);
    };
  });
  afterAll(async () => {
    await clients?.cleanup();
    await server?.stop();
    await dir?.cleanup();
  });

  const kubectl = async (...args: string[]) => {
    const r = await clients.kubectl(args);
    expect(r.stderr, `kubectl ${args.join(" ")}`).toBe("");
    expect(r.code).toBe(0);
    return r.stdout;
  };

  it("applies one folder with namespaces, pods, services, a CRD and its custom object, as against a real cluster", async () => {
    const folder = join(dir.path, "app");
    await mkdir(folder);
    await writeFile(join(folder, "demo.yaml"), MANIFESTS);
    await writeFile(join(folder, "crd.yaml"), CRD);
    await writeFile(join(folder, "policy.yaml"), POLICY);
    // As with kube-apiserver: kubectl maps every object before creating any, so the custom object
    // of a CRD created in the same run fails once ("ensure CRDs are installed first").
    const first = await clients.kubectl(["apply", "-f", folder]);
    expect(first.code).not.toBe(0);
    expect(first.stderr).toContain(
      'no matches for kind "AuthorizationPolicy" in version "security.istio.io/v1"',
    );
    expect(first.stderr).toContain("ensure CRDs are installed first");
    expect(first.stdout).toContain(
      "customresourcedefinition.apiextensions.k8s.io/authorizationpolicies.security.istio.io created",
    );
    expect(first.stdout).toContain("pod/web created");
    await kubectl("wait", "--for", "condition=established", "crd/authorizationpolicies.security.istio.io");
    const second = await kubectl("apply", "-f", folder);
    expect(second).toContain("authorizationpolicy.security.istio.io/allow-sleep created");
    expect(second).toContain("pod/web unchanged");
    expect(await kubectl("apply", "-f", folder)).toContain(
      "authorizationpolicy.security.istio.io/allow-sleep unchanged",
    );
    expect(await kubectl("get", "ap", "-n", "demo")).toMatch(/^NAME\s+ACTION\nallow-sleep\s+ALLOW\n$/);
  });

  it("gets with -o wide, -o yaml and the server's tables", async () => {
    await server.objects.patch(
      server.registry.find("", "v1", "pods")!,
      "demo",
      "web",
      "merge",
      { status: { phase: "Running", podIP: "10.0.0.5" } },
      { subresource: "status" },
    );
    const wide = await kubectl("get", "pods", "-n", "demo", "-o", "wide");
    expect(wide).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/);
    expect(wide).toMatch(/web\s+0\/1\s+Running\s+0\s+\S+\s+10\.0\.0\.5\s+node-1/);
    expect(await kubectl("get", "svc", "web", "-n", "demo")).toMatch(
      /web\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+80\/TCP/,
    );
    const yaml = await kubectl("get", "pod", "web", "-n", "demo", "-o", "yaml");
    expect(yaml).toContain("serviceAccountName: default");
    expect(yaml).toContain("kubectl.kubernetes.io/last-applied-configuration");
  });

  it("label, annotate and get -w seeing the change", async () => {
    // The server's Table rows in watch events, with kubectl's label column (-L) read from each row's metadata.
    const watch = clients.kubectlStream(["get", "pods", "-n", "demo", "-w", "-L", "tier"]);
    await eventually(
      () =>
        expect(watch.output()).toMatch(
          /NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+TIER\nweb\s+0\/1\s+Running\s+0\s+\S+\s*\n/,
        ),
      15_000,
    );
    expect(await kubectl("label", "pod", "web", "-n", "demo", "tier=front")).toBe("pod/web labeled\n");
    await eventually(
      () => expect(watch.output()).toMatch(/web\s+0\/1\s+Running\s+0\s+\S+\s+front\n/),
      15_000,
    );
    await watch.stop();
    expect(await kubectl("annotate", "pod", "web", "-n", "demo", "note=hi")).toBe("pod/web annotated\n");
    expect(
      await kubectl("get", "pod", "web", "-n", "demo", "-o", "jsonpath={.metadata.annotations.note}"),
    ).toBe("hi");
    const labelPatch = server.requests.find((r) => r.method === "PATCH" && r.path.endsWith("/pods/web"));
    expect(labelPatch?.contentType).toBe("application/merge-patch+json");
  });

  it("create token with audience, duration and a bound pod; TokenReview sees the pod", async () => {
    const token = (
      await kubectl(
        "create",
        "token",
        "default",
        "-n",
        "demo",
        "--audience",
        "istio-ca",
        "--duration",
        "2h",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "web",
      )
    ).trim();
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
    expect(claims.aud).toEqual(["istio-ca"]);
    expect(claims.exp - claims.iat).toBe(7200);
    expect(claims["kubernetes.io"].pod.name).toBe("web");
    const review = await server.tokens.review(
      { spec: { token, audiences: ["istio-ca"] } },
      (kind, ns, name) =>
        server.store.get(
          kind === "Pod" ? "/pods" : kind === "Node" ? "/nodes" : "/serviceaccounts",
          ns,
          name,
        ),
    );
    expect(
      (review.status as { user: { extra: Record<string, string[]> } }).user.extra[
        "authentication.kubernetes.io/pod-name"
      ],
    ).toEqual(["web"]);
  });

  it("create namespace (a protobuf body from kubectl's typed client)", async () => {
    expect(await kubectl("create", "namespace", "made")).toBe("namespace/made created\n");
    expect(await kubectl("get", "namespace", "made", "-o", "jsonpath={.status.phase}")).toBe("Active");
    const post = server.requests.findLast((r) => r.method === "POST" && r.path === "/api/v1/namespaces");
    expect(post?.contentType).toMatch(/protobuf/);
  });

  it("get --raw, logs and the pod proxy (through the test's kubelet hooks)", async () => {
    expect(JSON.parse(await kubectl("get", "--raw", "/api"))).toMatchObject({
      kind: "APIVersions",
      versions: ["v1"],
    });
    expect(await kubectl("logs", "web", "-n", "demo")).toBe("log of demo/web container web\n");
    expect(await kubectl("get", "--raw", "/api/v1/namespaces/demo/pods/web:http/proxy/healthz")).toBe(
      "proxied to 10.0.0.5:8080/healthz",
    );
  });

  it("kubectl apply --server-side: conflicts with another manager's field, --force-conflicts takes it", async () => {
    const cm = (value: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: demo}\ndata: {key: ${value}}\n`;
    await writeFile(join(dir.path, "ssa-a.yaml"), cm("a"));
    await writeFile(join(dir.path, "ssa-b.yaml"), cm("b"));
    expect(
      await kubectl(
        "apply",
        "--server-side",
        "--field-manager",
        "team-a",
        "-f",
        join(dir.path, "ssa-a.yaml"),
      ),
    ).toBe("configmap/ssa serverside-applied\n");
    const conflict = await clients.kubectl([
      "apply",
      "--server-side",
      "--field-manager",
      "team-b",
      "-f",
      join(dir.path, "ssa-b.yaml"),
    ]);
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain('conflict with "team-a"');
    expect(conflict.stderr).toContain(".data.key");
    await kubectl(
      "apply",
      "--server-side",
      "--field-manager",
      "team-b",
      "--force-conflicts",
      "-f",
      join(dir.path, "ssa-b.yaml"),
    );
    expect(await kubectl("get", "cm", "ssa", "-n", "demo", "-o", "jsonpath={.data.key}")).toBe("b");
  });

  it("delete waits for the object to be gone", async () => {
    // No kubelet runs here to finish a graceful deletion of the bound pod: force it, as on a cluster
    // (kubectl warns about it on stderr).
    const del = await clients.kubectl(["delete", "pod", "web", "-n", "demo", "--grace-period=0", "--force"]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toContain('pod "web" force deleted from demo namespace');
    const r = await clients.kubectl(["get", "pod", "web", "-n", "demo"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('pods "web" not found');
  });

  it("helm install, upgrade (server-side apply) and uninstall of a chart", async () => {
    const chart = join(dir.path, "chart");
    await mkdir(join(chart, "templates"), { recursive: true });
    for (const [file, text] of Object.entries(CHART)) await writeFile(join(chart, file), text);
    const helm = async (...args: string[]) => {
      const r = await clients.helm(args);
      expect(r.code, `helm ${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    expect(await helm("install", "rel", chart, "-n", "default")).toContain("STATUS: deployed");
    expect(await kubectl("get", "cm", "rel-config", "-o", "jsonpath={.data.greeting}")).toBe("hello");
    expect(
      await helm("upgrade", "rel", chart, "--set", "greeting=bye", "--set", "withService=false"),
    ).toContain("REVISION: 2");
    expect(await kubectl("get", "cm", "rel-config", "-o", "jsonpath={.data.greeting}")).toBe("bye");
    expect((await clients.kubectl(["get", "svc", "rel-svc"])).stderr).toContain("not found");
    const applies = server.requests.filter(
      (r) => r.contentType === "application/apply-patch+yaml" && r.query.includes("fieldManager=helm"),
    );
    expect(applies.length).toBeGreaterThanOrEqual(5);
    expect(await helm("list", "-q")).toBe("rel\n");
    await helm("uninstall", "rel");
    expect(await kubectl("get", "cm,deploy,secret", "-n", "default", "-o", "name")).toBe(
      "configmap/kube-root-ca.crt\n",
    );
  });
});
