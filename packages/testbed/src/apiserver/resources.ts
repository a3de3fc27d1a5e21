// The kinds the server serves: the built-in ones our components and the clients use, and those
// that CustomResourceDefinitions add at run time. Discovery, routing, selectors and tables all
// read this registry, so a kind exists everywhere at once or nowhere.

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  priority?: number;
  description?: string;
  format?: string;
}

export interface ResourceType {
  group: string;
  version: string;
  /** Plural, the path segment. */
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Has a status subresource: the main resource ignores status, /status ignores the rest. */
  status: boolean;
  /** Field selector paths beyond metadata.name and metadata.namespace (as the real server allows). */
  fieldSelectors: string[];
  /** From a CRD's additionalPrinterColumns; built-ins have their own in table.ts. */
  printerColumns?: PrinterColumn[];
  /** Set for kinds a CRD defines. */
  crd?: string;
}

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function builtin(
  gv: string,
  resource: string,
  kind: string,
  namespaced: boolean,
  extra: Partial<ResourceType> = {},
): ResourceType {
  const [group, version] = gv.includes("/") ? gv.split("/") : ["", gv];
  return {
    group: group!,
    version: version!,
    resource,
    singular: kind.toLowerCase(),
    kind,
    namespaced,
    shortNames: [],
    categories: [],
    verbs: ALL_VERBS,
    status: false,
    fieldSelectors: [],
    ...extra,
  };
}

/** Built-in kinds; field selectors as kube-apiserver's per-kind GetAttrs allow them. */
export const BUILTIN_TYPES: readonly ResourceType[] = [
  builtin("v1", "namespaces", "Namespace", false, {
    shortNames: ["ns"],
    status: true,
    fieldSelectors: ["status.phase"],
    verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  }),
  builtin("v1", "nodes", "Node", false, {
    shortNames: ["no"],
    status: true,
    fieldSelectors: ["spec.unschedulable"],
  }),
  builtin("v1", "pods", "Pod", true, {
    shortNames: ["po"],
    categories: ["all"],
    status: true,
    fieldSelectors: [
      "spec.nodeName",
      "spec.restartPolicy",
      "spec.schedulerName",
      "spec.serviceAccountName",
      "spec.hostNetwork",
      "status.phase",
      "status.podIP",
      "status.nominatedNodeName",
    ],
  }),
  builtin("v1", "services", "Service", true, { shortNames: ["svc"], categories: ["all"], status: true }),
  builtin("v1", "serviceaccounts", "ServiceAccount", true, { shortNames: ["sa"] }),
  builtin("v1", "configmaps", "ConfigMap", true, { shortNames: ["cm"] }),
  builtin("v1", "secrets", "Secret", true, { fieldSelectors: ["type"] }),
  builtin("v1", "events", "Event", true, {
    shortNames: ["ev"],
    fieldSelectors: [
      "involvedObject.kind",
      "involvedObject.namespace",
      "involvedObject.name",
      "involvedObject.uid",
      "involvedObject.apiVersion",
      "involvedObject.resourceVersion",
      "involvedObject.fieldPath",
      "reason",
      "reportingComponent",
      "source",
      "type",
    ],
  }),
  builtin("discovery.k8s.io/v1", "endpointslices", "EndpointSlice", true),
  builtin("apps/v1", "deployments", "Deployment", true, {
    shortNames: ["deploy"],
    categories: ["all"],
    status: true,
  }),
  builtin("apps/v1", "daemonsets", "DaemonSet", true, {
    shortNames: ["ds"],
    categories: ["all"],
    status: true,
  }),
  builtin("apps/v1", "replicasets", "ReplicaSet", true, {
    shortNames: ["rs"],
    categories: ["all"],
    status: true,
  }),
  builtin("apps/v1", "controllerrevisions", "ControllerRevision", true),
  builtin("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", true, {
    shortNames: ["pdb"],
    status: true,
  }),
  // Stored only: the server authorizes nobody by them (README: no RBAC), but charts create them.
  builtin("rbac.authorization.k8s.io/v1", "roles", "Role", true),
  builtin("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", true),
  builtin("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", false),
  builtin("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", false),
  builtin("coordination.k8s.io/v1", "leases", "Lease", true),
  builtin("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", false, {
    shortNames: ["crd", "crds"],
    categories: ["api-extensions"],
    status: true,
  }),
  // Create-only virtual kinds: nothing is stored.
  builtin("authentication.k8s.io/v1", "tokenreviews", "TokenReview", false, { verbs: ["create"] }),
];

export function groupVersion(t: Pick<ResourceType, "group" | "version">): string {
  return t.group === "" ? t.version : `${t.group}/${t.version}`;
}

/** Storage identity: one store per group and resource, whatever the version it is read at. */
export function storageKey(t: Pick<ResourceType, "group" | "resource">): string {
  return `${t.group}/${t.resource}`;
}

/** The registry: built-ins plus what established CRDs add (crds.ts keeps it in step). */
export class ResourceRegistry {
  private readonly types: ResourceType[] = [...BUILTIN_TYPES];

  all(): readonly ResourceType[] {
    return this.types;
  }

  find(group: string, version: string, resource: string): ResourceType | undefined {
    return this.types.find((t) => t.group === group && t.version === version && t.resource === resource);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.types.find((t) => groupVersion(t) === apiVersion && t.kind === kind);
  }

  /** Replaces every version a CRD served with the ones it serves now. */
  setCrdTypes(crdName: string, types: ResourceType[]): void {
    for (let i = this.types.length - 1; i >= 0; i--)
      if (this.types[i]!.crd === crdName) this.types.splice(i, 1);
    this.types.push(...types);
  }

  /** Group-versions in discovery order: the legacy core group first, then named groups. */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const t of this.types) {
      const versions = out.get(t.group) ?? [];
      if (!versions.includes(t.version)) versions.push(t.version);
      out.set(t.group, versions);
    }
    return out;
  }
}
