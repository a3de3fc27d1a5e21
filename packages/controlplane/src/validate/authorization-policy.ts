// Istio's semantic rules for AuthorizationPolicy, the ones its CRD schema cannot express (they
// live in istio/pkg/config/validation): mutually exclusive fields, non-empty values, well-formed
// IPs, ports and service accounts, and the set of `when` keys Istio knows.

import { isCidrOrIp } from "@ambient/core";
import {
  at,
  forEachRecord,
  isRecord,
  type Json,
  type Problems,
  parsePortString,
  present,
  quote,
  record,
  stringsAt,
} from "@ambient/kube";

const AUTHORIZATION_ACTIONS = ["ALLOW", "DENY", "AUDIT", "CUSTOM"] as const;

const SOURCE_FIELDS = [
  "principals",
  "notPrincipals",
  "requestPrincipals",
  "notRequestPrincipals",
  "namespaces",
  "notNamespaces",
  "serviceAccounts",
  "notServiceAccounts",
  "ipBlocks",
  "notIpBlocks",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
] as const;
const OPERATION_FIELDS = [
  "hosts",
  "notHosts",
  "ports",
  "notPorts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
] as const;
const IP_FIELDS = new Set(["ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"]);
// Istio refuses these next to CUSTOM: the external authorizer is asked before they are known.
const CUSTOM_UNSUPPORTED_SOURCE = new Set([
  "principals",
  "notPrincipals",
  "requestPrincipals",
  "notRequestPrincipals",
  "namespaces",
  "notNamespaces",
  "serviceAccounts",
  "notServiceAccounts",
]);

export function checkAuthorizationPolicy(obj: Json, problems: Problems): void {
  const spec = record(obj.spec);
  const action = spec.action ?? "ALLOW";
  if (typeof action !== "string" || !(AUTHORIZATION_ACTIONS as readonly string[]).includes(action)) {
    problems.add("spec.action", `must be one of ${AUTHORIZATION_ACTIONS.join(", ")}`);
  }

  if (action === "CUSTOM") {
    if (!isRecord(spec.provider) || !present(spec.provider.name)) {
      problems.add("spec.provider.name", "is required when action is CUSTOM (the extension provider to ask)");
    }
    if (spec.rules === undefined) {
      problems.add(
        "spec.rules",
        "a CUSTOM policy without rules never triggers; add an empty rule {} to apply it to every request",
      );
    }
  } else if (spec.provider !== undefined) {
    problems.add("spec.provider", `is only allowed with action CUSTOM, not ${String(action)}`);
  }

  checkSelectorAndTargets(spec, problems);
  forEachRecord(spec.rules, "spec.rules", (rule, path) =>
    checkRule(rule, path, action === "CUSTOM", problems),
  );
}

/** `selector`, `targetRef` and `targetRefs` pick the policy's scope; at most one may be set. */
export function checkSelectorAndTargets(spec: Json, problems: Problems): void {
  const hasSelector = spec.selector !== undefined && spec.selector !== null;
  const hasRef = spec.targetRef !== undefined && spec.targetRef !== null;
  const hasRefs = present(spec.targetRefs);
  if (hasSelector && hasRef) problems.add("spec.targetRef", "cannot be combined with selector; set only one");
  if (hasSelector && hasRefs)
    problems.add("spec.targetRefs", "cannot be combined with selector; set only one");
  if (hasRef && hasRefs)
    problems.add("spec.targetRefs", "cannot be combined with targetRef; use targetRefs only");

  if (hasSelector) {
    const labels = record(record(spec.selector).matchLabels);
    for (const [key, value] of Object.entries(labels)) {
      const path = at("spec.selector.matchLabels", key);
      if (key === "") problems.add(path, "an empty label key is not allowed in a selector");
      if (key.includes("*") || (typeof value === "string" && value.includes("*"))) {
        problems.add(path, "wildcards are not supported in a selector");
      }
    }
  }
}

function checkRule(rule: Json, path: string, custom: boolean, problems: Problems): void {
  if (Array.isArray(rule.from) && rule.from.length === 0) {
    problems.add(at(path, "from"), "must not be empty when present; omit it to match any source");
  }
  forEachRecord(rule.from, at(path, "from"), (from, fromPath) => {
    const sourcePath = at(fromPath, "source");
    if (!isRecord(from.source)) {
      problems.add(sourcePath, "is required");
      return;
    }
    checkSource(from.source, sourcePath, custom, problems);
  });

  if (Array.isArray(rule.to) && rule.to.length === 0) {
    problems.add(at(path, "to"), "must not be empty when present; omit it to match any operation");
  }
  forEachRecord(rule.to, at(path, "to"), (to, toPath) => {
    const opPath = at(toPath, "operation");
    if (!isRecord(to.operation)) {
      problems.add(opPath, "is required");
      return;
    }
    const op = to.operation;
    if (!OPERATION_FIELDS.some((f) => present(op[f]))) {
      problems.add(opPath, `must set at least one of ${OPERATION_FIELDS.join(", ")}`);
    }
    for (const field of OPERATION_FIELDS) {
      for (const item of stringsAt(op[field], at(opPath, field))) {
        if (item.value === "") problems.add(item.path, "must not be empty");
        else if ((field === "ports" || field === "notPorts") && parsePortString(item.value) === undefined) {
          problems.add(
            item.path,
            `${quote(item.value)} is not a port: write a number from 1 to 65535 as a string`,
          );
        }
      }
    }
  });

  forEachRecord(rule.when, at(path, "when"), (cond, condPath) => {
    checkCondition(cond, condPath, custom, problems);
  });
}

function checkSource(src: Json, path: string, custom: boolean, problems: Problems): void {
  if (!SOURCE_FIELDS.some((f) => present(src[f]))) {
    problems.add(path, `must set at least one of ${SOURCE_FIELDS.join(", ")}`);
  }
  // Istio 1.24+: serviceAccounts is its own way of naming identities, not a refinement of the others.
  const identityFields = ["principals", "notPrincipals", "namespaces", "notNamespaces"].filter((f) =>
    present(src[f]),
  );
  if (identityFields.length > 0) {
    for (const field of ["serviceAccounts", "notServiceAccounts"]) {
      if (present(src[field])) {
        problems.add(
          at(path, field),
          `cannot be combined with ${identityFields.join(", ")} in the same source`,
        );
      }
    }
  }
  for (const field of SOURCE_FIELDS) {
    const fieldPath = at(path, field);
    if (custom && CUSTOM_UNSUPPORTED_SOURCE.has(field) && present(src[field])) {
      problems.add(fieldPath, "is not supported with action CUSTOM");
    }
    for (const item of stringsAt(src[field], fieldPath)) {
      if (item.value === "") {
        problems.add(item.path, "must not be empty");
      } else if (IP_FIELDS.has(field) && !isCidrOrIp(item.value)) {
        problems.add(item.path, `${quote(item.value)} is not an IP address or CIDR range`);
      } else if (field === "serviceAccounts" || field === "notServiceAccounts") {
        const problem = serviceAccountProblem(item.value);
        if (problem) problems.add(item.path, problem);
      }
    }
  }
}

/** `ns/name`, or a bare name meaning the policy's own namespace. */
function serviceAccountProblem(value: string): string | undefined {
  const parts = value.split("/");
  if (parts.length > 2 || parts.some((p) => p === "")) {
    return `${quote(value)} must be "<namespace>/<serviceaccount>" or "<serviceaccount>"`;
  }
  return undefined;
}

const EXACT_KEYS = new Set([
  "source.ip",
  "remote.ip",
  "source.namespace",
  "source.principal",
  "source.serviceAccount",
  "request.auth.principal",
  "request.auth.audiences",
  "request.auth.presenter",
  "destination.ip",
  "destination.port",
  "connection.sni",
]);
const MAP_KEY_PREFIXES = ["request.headers", "request.auth.claims", "experimental.envoy.filters."];
const RETIRED_KEYS: Record<string, string> = {
  "destination.namespace": "is replaced by metadata.namespace",
  "destination.labels": "is replaced by the workload selector",
  "destination.name": "was only supported in v1alpha1",
  "destination.user": "was only supported in v1alpha1",
};

/** Istio's attribute names for `when`; map-like keys need the `name[entry]` form. */
function conditionKeyProblem(key: string): string | undefined {
  if (EXACT_KEYS.has(key)) return undefined;
  const prefix = MAP_KEY_PREFIXES.find((p) => key.startsWith(p));
  if (prefix) {
    const open = key.indexOf("[");
    return key.endsWith("]") && open > 0 && open < key.length - 2
      ? undefined
      : `${quote(key)} must have the form ${prefix.replace(/\.$/, ".<filter>")}[<name>]`;
  }
  const retired = Object.keys(RETIRED_KEYS).find((k) => key === k || key.startsWith(`${k}[`));
  if (retired) return `attribute ${retired} ${RETIRED_KEYS[retired]}`;
  return `${quote(key)} is not a supported attribute; use one of ${[...EXACT_KEYS].join(", ")}, request.headers[<name>], request.auth.claims[<name>], experimental.envoy.filters.<filter>[<key>]`;
}

function checkCondition(cond: Json, path: string, custom: boolean, problems: Problems): void {
  const key = cond.key;
  if (typeof key !== "string" || key === "") {
    problems.add(at(path, "key"), "is required");
  } else {
    const problem = conditionKeyProblem(key);
    if (problem) problems.add(at(path, "key"), problem);
    const identityKey = ["source.namespace", "source.principal", "source.serviceAccount"].includes(key);
    if (custom && (identityKey || key.startsWith("request.auth."))) {
      problems.add(at(path, "key"), `${key} is not supported with action CUSTOM`);
    }
  }
  if (!present(cond.values) && !present(cond.notValues)) {
    problems.add(path, "must set values or notValues");
  }
  for (const field of ["values", "notValues"]) {
    for (const item of stringsAt(cond[field], at(path, field))) {
      if (item.value === "") problems.add(item.path, "must not be empty");
      else if (
        (key === "source.ip" || key === "remote.ip" || key === "destination.ip") &&
        !isCidrOrIp(item.value)
      ) {
        problems.add(item.path, `${quote(item.value)} is not an IP address or CIDR range`);
      } else if (key === "destination.port" && parsePortString(item.value) === undefined) {
        problems.add(item.path, `${quote(item.value)} is not a port from 1 to 65535`);
      } else if (key === "source.serviceAccount") {
        const problem = serviceAccountProblem(item.value);
        if (problem) problems.add(item.path, problem);
      }
    }
  }
}
