// Checks every object gets before its kind's own rules: a known apiVersion/kind pair, and
// metadata with a valid name, namespace, labels and annotations. Returns the registry entry so
// the caller knows which kind-specific validators to run.

import { describeSupportedKinds, type KindInfo, kindInfo, parseApiVersion } from "../model/index.js";
import { dns1035Label, dns1123Label, dns1123Subdomain, labelKey, labelValue } from "./formats.js";
import { at, isRecord, type Json, type Problems, quote } from "./problems.js";

export const UNKNOWN_KIND_CODE = "AMB_OBJECT_UNKNOWN_KIND";

// Services and Namespaces become DNS labels, so Kubernetes holds their names to label rules;
// everything else here may be a dotted subdomain.
const NAME_RULE: Record<string, (name: string) => string | undefined> = {
  Service: dns1035Label,
  Namespace: dns1123Label,
};

export function checkTypeAndMeta(obj: Json, problems: Problems): KindInfo | undefined {
  const info = checkKind(obj, problems);
  checkMetadata(obj, info, problems);
  return info;
}

function checkKind(obj: Json, problems: Problems): KindInfo | undefined {
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== "string" || apiVersion === "") {
    problems.add("apiVersion", 'is required (for example "v1" or "security.istio.io/v1")');
  }
  if (typeof kind !== "string" || kind === "") {
    problems.add("kind", "is required");
    return undefined;
  }
  if (typeof apiVersion !== "string" || apiVersion === "") return undefined;

  const info = kindInfo(apiVersion, kind);
  if (!info) {
    const group = parseApiVersion(apiVersion).group;
    problems.add(
      "kind",
      `kind ${kind} (${group || "core"} group) is not supported; supported kinds are ${describeSupportedKinds()}`,
      UNKNOWN_KIND_CODE,
    );
    return undefined;
  }
  const { version } = parseApiVersion(apiVersion);
  if (!info.versions.includes(version)) {
    const accepted = info.versions.map((v) => (info.group ? `${info.group}/${v}` : v)).join(", ");
    problems.add("apiVersion", `${apiVersion} is not a supported version of ${kind}; use ${accepted}`);
  }
  return info;
}

function checkMetadata(obj: Json, info: KindInfo | undefined, problems: Problems): void {
  const meta = obj.metadata;
  if (!isRecord(meta)) {
    problems.add("metadata", meta === undefined ? "is required" : "must be a mapping");
    return;
  }

  const name = meta.name;
  if (name === undefined || name === "") {
    problems.add("metadata.name", "is required");
  } else if (typeof name !== "string") {
    problems.add("metadata.name", "must be a string");
  } else {
    const rule = (info && NAME_RULE[info.kind]) ?? dns1123Subdomain;
    const problem = rule(name);
    if (problem) problems.add("metadata.name", `${quote(name)} ${problem}`);
  }

  const ns = meta.namespace;
  if (ns !== undefined) {
    if (typeof ns !== "string") {
      problems.add("metadata.namespace", "must be a string");
    } else if (ns !== "") {
      const problem = dns1123Label(ns);
      if (problem) problems.add("metadata.namespace", `${quote(ns)} ${problem}`);
    }
  }

  checkStringMap(meta.labels, "metadata.labels", problems, true);
  checkStringMap(meta.annotations, "metadata.annotations", problems, false);

  if (meta.ownerReferences !== undefined) {
    if (!Array.isArray(meta.ownerReferences)) {
      problems.add("metadata.ownerReferences", "must be a list");
    } else {
      meta.ownerReferences.forEach((ref, i) => {
        const path = at("metadata.ownerReferences", i);
        if (!isRecord(ref)) {
          problems.add(path, "must be a mapping");
          return;
        }
        if (typeof ref.kind !== "string" || ref.kind === "") problems.add(at(path, "kind"), "is required");
        if (typeof ref.name !== "string" || ref.name === "") problems.add(at(path, "name"), "is required");
      });
    }
  }
}

function checkStringMap(value: unknown, path: string, problems: Problems, isLabels: boolean): void {
  if (value === undefined || value === null) return;
  if (!isRecord(value)) {
    problems.add(path, "must be a mapping of strings");
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const keyPath = at(path, key);
    // YAML reads `version: 1` or `enabled: true` as a number or boolean; Kubernetes refuses them.
    if (typeof v !== "string") {
      problems.add(keyPath, `must be a string; quote the value (${key}: "${String(v)}")`);
      continue;
    }
    if (!isLabels) continue;
    const keyProblem = labelKey(key);
    if (keyProblem) problems.add(keyPath, `label key ${quote(key)} ${keyProblem}`);
    const valueProblem = labelValue(v);
    if (valueProblem) problems.add(keyPath, `label value ${quote(v)} ${valueProblem}`);
  }
}
