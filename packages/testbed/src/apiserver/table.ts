// Server-side printing: `kubectl get` asks for `as=Table` and prints the server's columns (`-o wide`
// adds those with priority 1). The columns follow kube-apiserver's printers for the kinds used;
// custom kinds get their additionalPrinterColumns, others Name and Age.

import { jsonPathCell } from "./jsonpath.js";
import { groupVersion, type PrinterColumn, type ResourceType } from "./resources.js";
import type { KubeObject } from "./store.js";

type Cell = string | number;
interface Column {
  name: string;
  priority?: number;
  cell: (o: KubeObject) => Cell;
}

const AS_TABLE = /as=Table/;

export function wantsTable(accept: string | undefined): boolean {
  return AS_TABLE.test(accept ?? "");
}

/** kubectl's HumanDuration: "45s", "3m12s", "5h", "3d4h", "12d"... */
export function age(timestamp: string | undefined, nowMs = Date.now()): string {
  if (!timestamp) return "<unknown>";
  const s = Math.max(0, Math.floor((nowMs - Date.parse(timestamp)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  return d < 8 && h % 24 !== 0 ? `${d}d${h % 24}h` : `${d}d`;
}

const get = (o: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((cur, k) => (cur as Record<string, unknown> | undefined)?.[k], o);
const str = (v: unknown, none = "<none>") => (v === undefined || v === null || v === "" ? none : String(v));
const name: Column = { name: "Name", cell: (o) => o.metadata.name! };
const ageCol: Column = { name: "Age", cell: (o) => age(o.metadata.creationTimestamp) };

function podPorts(o: KubeObject): string {
  const ports = (get(o, "spec.ports") ?? []) as { port: number; protocol?: string; nodePort?: number }[];
  if (ports.length === 0) return "<none>";
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol ?? "TCP"}`).join(",");
}

function selector(v: unknown): string {
  const m = (v ?? {}) as Record<string, string>;
  const parts = Object.entries(m).map(([k, x]) => `${k}=${x}`);
  return parts.length ? parts.join(",") : "<none>";
}

const BUILTIN_COLUMNS: Record<string, Column[]> = {
  Pod: [
    name,
    {
      name: "Ready",
      cell: (o) => {
        const total = ((get(o, "spec.containers") ?? []) as unknown[]).length;
        const ready = ((get(o, "status.containerStatuses") ?? []) as { ready?: boolean }[]).filter(
          (c) => c.ready,
        ).length;
        return `${ready}/${total}`;
      },
    },
    {
      name: "Status",
      cell: (o) => (o.metadata.deletionTimestamp ? "Terminating" : str(get(o, "status.phase"), "Unknown")),
    },
    {
      name: "Restarts",
      cell: (o) =>
        ((get(o, "status.containerStatuses") ?? []) as { restartCount?: number }[]).reduce(
          (n, c) => n + (c.restartCount ?? 0),
          0,
        ),
    },
    ageCol,
    { name: "IP", priority: 1, cell: (o) => str(get(o, "status.podIP")) },
    { name: "Node", priority: 1, cell: (o) => str(get(o, "spec.nodeName")) },
    { name: "Nominated Node", priority: 1, cell: (o) => str(get(o, "status.nominatedNodeName")) },
    { name: "Readiness Gates", priority: 1, cell: () => "<none>" },
  ],
  Service: [
    name,
    { name: "Type", cell: (o) => str(get(o, "spec.type"), "ClusterIP") },
    { name: "Cluster-IP", cell: (o) => str(get(o, "spec.clusterIP")) },
    { name: "External-IP", cell: (o) => str(get(o, "spec.externalIPs")) },
    { name: "Port(s)", cell: podPorts },
    ageCol,
    { name: "Selector", priority: 1, cell: (o) => selector(get(o, "spec.selector")) },
  ],
  Namespace: [name, { name: "Status", cell: (o) => str(get(o, "status.phase"), "Active") }, ageCol],
  Node: [
    name,
    {
      name: "Status",
      cell: (o) => {
        const ready = ((get(o, "status.conditions") ?? []) as { type: string; status: string }[]).find(
          (c) => c.type === "Ready",
        );
        return ready?.status === "True" ? "Ready" : "NotReady";
      },
    },
    { name: "Roles", cell: () => "<none>" },
    ageCol,
    { name: "Version", cell: (o) => str(get(o, "status.nodeInfo.kubeletVersion"), "") },
    {
      name: "Internal-IP",
      priority: 1,
      cell: (o) =>
        str(
          ((get(o, "status.addresses") ?? []) as { type: string; address: string }[]).find(
            (a) => a.type === "InternalIP",
          )?.address,
        ),
    },
  ],
  Deployment: [
    name,
    { name: "Ready", cell: (o) => `${get(o, "status.readyReplicas") ?? 0}/${get(o, "spec.replicas") ?? 1}` },
    { name: "Up-to-date", cell: (o) => Number(get(o, "status.updatedReplicas") ?? 0) },
    { name: "Available", cell: (o) => Number(get(o, "status.availableReplicas") ?? 0) },
    ageCol,
  ],
  ReplicaSet: [
    name,
    { name: "Desired", cell: (o) => Number(get(o, "spec.replicas") ?? 1) },
    { name: "Current", cell: (o) => Number(get(o, "status.replicas") ?? 0) },
    { name: "Ready", cell: (o) => Number(get(o, "status.readyReplicas") ?? 0) },
    ageCol,
  ],
  DaemonSet: [
    name,
    { name: "Desired", cell: (o) => Number(get(o, "status.desiredNumberScheduled") ?? 0) },
    { name: "Current", cell: (o) => Number(get(o, "status.currentNumberScheduled") ?? 0) },
    { name: "Ready", cell: (o) => Number(get(o, "status.numberReady") ?? 0) },
    ageCol,
  ],
  ConfigMap: [name, { name: "Data", cell: (o) => Object.keys((o.data ?? {}) as object).length }, ageCol],
  Secret: [
    name,
    { name: "Type", cell: (o) => str(o.type, "Opaque") },
    { name: "Data", cell: (o) => Object.keys((o.data ?? {}) as object).length },
    ageCol,
  ],
  ServiceAccount: [name, { name: "Secrets", cell: (o) => ((o.secrets ?? []) as unknown[]).length }, ageCol],
  CustomResourceDefinition: [name, { name: "Created At", cell: (o) => str(o.metadata.creationTimestamp) }],
};

function crdColumns(cols: PrinterColumn[]): Column[] {
  // With additionalPrinterColumns the CRD's list replaces the default Age column.
  if (cols.length === 0) return [name, ageCol];
  return [
    name,
    ...cols.map((c) => ({
      name: c.name,
      priority: c.priority ?? 0,
      cell: (o: KubeObject) => {
        if (c.type === "date") return age(get(o, c.jsonPath.replace(/^\./, "")) as string);
        return jsonPathCell(o, c.jsonPath);
      },
    })),
  ];
}

function columnsFor(type: ResourceType): Column[] {
  if (type.crd) return crdColumns(type.printerColumns ?? []);
  return BUILTIN_COLUMNS[type.kind] ?? [name, ageCol];
}

/** A Table of `objects`; rows carry the object's metadata or, with includeObject=Object, all of it. */
export function toTable(
  type: ResourceType,
  objects: KubeObject[],
  rv: string,
  includeObject?: string,
): unknown {
  const columns = columnsFor(type);
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion: rv },
    columnDefinitions: columns.map((c) => ({
      name: c.name,
      type: c.name === "Restarts" || c.name === "Data" ? "integer" : "string",
      format: c.name === "Name" ? "name" : "",
      description: "",
      priority: c.priority ?? 0,
    })),
    rows: objects.map((o) => ({
      cells: columns.map((c) => c.cell(o)),
      object:
        includeObject === "Object"
          ? { ...o, apiVersion: groupVersion(type), kind: type.kind }
          : { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}
