// CustomResourceDefinitions: an accepted CRD serves its kinds at once (discovery, CRUD, watch) and
// reports Established and NamesAccepted, which `kubectl wait --for condition=established` and
// helm read. Schemas are not enforced (see README); the names and scope are validated.

import { invalid } from "./errors.js";
import type { PrinterColumn, ResourceType } from "./resources.js";
import type { KubeObject } from "./store.js";

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  subresources?: { status?: object };
  additionalPrinterColumns?: PrinterColumn[];
  selectableFields?: { jsonPath: string }[];
}

interface CrdSpec {
  group?: string;
  scope?: string;
  names?: {
    plural?: string;
    singular?: string;
    kind?: string;
    listKind?: string;
    shortNames?: string[];
    categories?: string[];
  };
  versions?: CrdVersion[];
}

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** Checks what the registry needs; a CRD the real server would refuse is refused here too. */
export function validateCrd(crd: KubeObject): void {
  const spec = (crd.spec ?? {}) as CrdSpec;
  const name = crd.metadata.name ?? "";
  const problems: { field: string; message: string }[] = [];
  if (!spec.group) problems.push({ field: "spec.group", message: "Required value" });
  if (!spec.names?.plural) problems.push({ field: "spec.names.plural", message: "Required value" });
  if (!spec.names?.kind) problems.push({ field: "spec.names.kind", message: "Required value" });
  if (spec.scope !== "Namespaced" && spec.scope !== "Cluster") {
    problems.push({
      field: "spec.scope",
      message: `Unsupported value: "${spec.scope}": supported values: "Cluster", "Namespaced"`,
    });
  }
  if (spec.group && spec.names?.plural && name !== `${spec.names.plural}.${spec.group}`) {
    problems.push({
      field: "metadata.name",
      message: `Invalid value: "${name}": must be spec.names.plural+"."+spec.group`,
    });
  }
  const versions = spec.versions ?? [];
  if (versions.length === 0)
    problems.push({
      field: "spec.versions",
      message: "Required value: must have exactly one version marked as storage version",
    });
  else if (versions.filter((v) => v.storage).length !== 1) {
    problems.push({
      field: "spec.versions",
      message: "Invalid value: must have exactly one version marked as storage version",
    });
  }
  if (problems.length > 0) throw invalid("CustomResourceDefinition", name, problems);
}

/** The kinds an established CRD serves, one per served version. */
export function crdTypes(crd: KubeObject): ResourceType[] {
  const spec = crd.spec as CrdSpec;
  const names = spec.names!;
  return (spec.versions ?? [])
    .filter((v) => v.served !== false)
    .map((v) => ({
      group: spec.group!,
      version: v.name,
      resource: names.plural!,
      singular: names.singular ?? names.kind!.toLowerCase(),
      kind: names.kind!,
      namespaced: spec.scope === "Namespaced",
      shortNames: names.shortNames ?? [],
      categories: names.categories ?? [],
      verbs: ALL_VERBS,
      status: v.subresources?.status !== undefined,
      fieldSelectors: (v.selectableFields ?? []).map((f) => f.jsonPath.replace(/^\./, "")),
      printerColumns: v.additionalPrinterColumns ?? [],
      crd: crd.metadata.name!,
    }));
}

/** Status as the apiextensions controllers leave it once the names are accepted. */
export function establishedStatus(crd: KubeObject, now: string): Record<string, unknown> {
  const spec = crd.spec as CrdSpec;
  const names = spec.names!;
  const condition = (type: string, reason: string, message: string) => ({
    type,
    status: "True",
    lastTransitionTime: now,
    reason,
    message,
  });
  return {
    acceptedNames: {
      plural: names.plural,
      singular: names.singular ?? names.kind!.toLowerCase(),
      kind: names.kind,
      listKind: names.listKind ?? `${names.kind}List`,
      ...(names.shortNames ? { shortNames: names.shortNames } : {}),
      ...(names.categories ? { categories: names.categories } : {}),
    },
    conditions: [
      condition("NamesAccepted", "NoConflicts", "no conflicts found"),
      condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
    ],
    storedVersions: (spec.versions ?? []).filter((v) => v.storage).map((v) => v.name),
  };
}
