// One object model, two sources: the demo mesh (examples/) applied to the test API server with the
// real kubectl, and the same objects as a manifests folder, give byte-identical xDS. The translation
// cannot tell which source fed it: every resource of every type is compared, names and bytes.

import { cp as copy, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ControlPlane } from "@ambient/controlplane";
import { createMemoryLogger } from "@ambient/core";
import { istioCrds, startTestApiServer, type TestApiServer } from "@ambient/testbed";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { eventually, type TempDir, tempDir } from "../utils/index.js";
import { type KubeClients, kubeClients } from "../utils/kube.js";
import { type RunningKubeControlPlane, startKubeControlPlane } from "../utils/kube-controlplane.js";

const EXAMPLES = fileURLToPath(new URL("../../examples", import.meta.url));

let api: TestApiServer;
let kube: KubeClients;
let fromApi: RunningKubeControlPlane;
let fromFolder: ControlPlane;
let folder: TempDir;
let state: TempDir;

/** Every published resource: type → name → content version (a hash of the bytes). */
function published(cp: ControlPlane): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const typeUrl of cp.store.typeUrls().sort()) {
    const byName = [...cp.store.resources(typeUrl)].sort(([a], [b]) => a.localeCompare(b));
    out[typeUrl] = Object.fromEntries(byName.map(([name, r]) => [name, r.version]));
  }
  return out;
}

beforeAll(async () => {
  api = await startTestApiServer({ objects: istioCrds() });
  kube = await kubeClients(api.kubeconfigPath);
  const applied = await kube.kubectl(["apply", "-f", EXAMPLES]);
  expect(applied, applied.stderr).toMatchObject({ code: 0 });
  // The kubelet's part: a created pod's status is the server's; the examples say what it becomes.
  for (const file of (await readdir(EXAMPLES)).filter((f) => f.endsWith(".yaml"))) {
    for (const doc of parseAllDocuments(await readFile(join(EXAMPLES, file), "utf8"))) {
      const obj = doc.toJS() as {
        kind?: string;
        metadata: { name: string; namespace: string };
        status?: object;
      };
      if (obj?.kind !== "Pod" || !obj.status) continue;
      const r = await kube.kubectl([
        ...["patch", "pod", obj.metadata.name, "-n", obj.metadata.namespace],
        ...["--subresource=status", "--type=merge", "-p", JSON.stringify({ status: obj.status })],
      ]);
      expect(r, r.stderr).toMatchObject({ code: 0 });
    }
  }

  // The folder: examples/ plus what every cluster has on its own (the system namespaces and the
  // `kubernetes` Service), read back from the API server so both sources hold the same objects.
  folder = await tempDir("ambient-examples-");
  await copy(EXAMPLES, folder.path, { recursive: true });
  const builtins = await kube.kubectl([
    ...["get", "namespaces/default", "namespaces/kube-system", "namespaces/kube-public"],
    ...["namespaces/kube-node-lease", "-o", "yaml"],
  ]);
  const service = await kube.kubectl(["get", "service", "kubernetes", "-n", "default", "-o", "yaml"]);
  await folder.write("99-cluster-builtins.yaml", `${builtins.stdout}\n---\n${service.stdout}`);

  state = await tempDir("ambient-folder-state-");
  fromFolder = await ControlPlane.start({
    configDir: folder.path,
    listen: { host: "127.0.0.1", port: 0 },
    stateDir: state.path,
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    rootNamespace: "istio-system",
    logger: createMemoryLogger("debug").logger,
    watch: false,
  });
  fromApi = await startKubeControlPlane(api);
}, 90_000);

afterAll(async () => {
  await fromApi?.stop();
  await fromFolder?.stop();
  await folder?.cleanup();
  await state?.cleanup();
  await kube?.cleanup();
  await api?.stop();
});

describe("the same objects through either source", () => {
  it("give identical xDS from the manifests folder and from the Kubernetes API", async () => {
    const expected = published(fromFolder);
    // Sanity: the demo's workloads, services and policies are all there.
    const counts = Object.values(expected).map((byName) => Object.keys(byName).length);
    expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(8);
    await eventually(() => expect(published(fromApi.cp)).toEqual(expected), 10_000);
    // One translation at start, holding every kind: none while the kinds were still listing.
    const publishes = fromApi.logs.filter((l) => l.msg === "configuration published");
    expect(publishes).toHaveLength(1);
  });
});
