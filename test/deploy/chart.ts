// Helpers for the chart tests: the real helm rendering deploy/charts/ambient, its output parsed into
// objects, and lookups by kind and name. Rendering needs no cluster (helm template).

import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { type KubeClients, kubeClients } from "../utils/kube.js";

export const CHART = join(import.meta.dirname, "..", "..", "deploy", "charts", "ambient");

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field in tests.
export type Manifest = Record<string, any>;

/** helm without a cluster: a kubeconfig that points nowhere, since `template` and `lint` never dial. */
export async function offlineHelm(): Promise<KubeClients> {
  return kubeClients("/nonexistent/kubeconfig");
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === "object");
}

export function find(objects: Manifest[], kind: string, name: string): Manifest {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) {
    const have = objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(", ");
    throw new Error(`no ${kind}/${name} rendered; rendered: ${have}`);
  }
  return found;
}

/** The first container of a workload's pod template. */
export function container(workload: Manifest): Manifest {
  return workload.spec.template.spec.containers[0];
}

export function envOf(workload: Manifest): Record<string, string | Manifest> {
  const out: Record<string, string | Manifest> = {};
  for (const e of container(workload).env ?? []) out[e.name] = e.value ?? e.valueFrom;
  return out;
}
