// HTTPRoute and GRPCRoute rules beyond what AJV checks of their CRD schema. The Gateway API CRDs
// carry these as CEL rules (x-kubernetes-validations), which the API server runs and AJV does
// not: a filter's type needs its config and no other, one of each header filter per rule, a
// ReplacePrefixMatch rewrite needs a PathPrefix match, weights are never negative. And every
// RegularExpression is compiled, as a VirtualService's are: the waypoint compiles all routes
// together, so one bad pattern would keep the whole table from updating.

import { at, forEachRecord, type Json, type Problems, quote, record, regex } from "@ambient/kube";

/** Filter type → the field holding its configuration (Gateway API's union discriminator). */
const FILTER_FIELDS: Record<string, string> = {
  RequestHeaderModifier: "requestHeaderModifier",
  ResponseHeaderModifier: "responseHeaderModifier",
  RequestRedirect: "requestRedirect",
  URLRewrite: "urlRewrite",
  RequestMirror: "requestMirror",
  ExtensionRef: "extensionRef",
  CORS: "cors",
  ExternalAuth: "externalAuth",
};
const FILTER_FIELD_NAMES = new Set(Object.values(FILTER_FIELDS));

export function checkHttpRoute(obj: Json, problems: Problems): void {
  checkRoute(obj, problems, true);
}

export function checkGrpcRoute(obj: Json, problems: Problems): void {
  checkRoute(obj, problems, false);
}

function checkRoute(obj: Json, problems: Problems, http: boolean): void {
  const spec = record(obj.spec);
  forEachRecord(spec.parentRefs, "spec.parentRefs", (ref, path) => {
    if (ref.kind === "Service" && ref.group !== undefined && ref.group !== "" && ref.group !== "core") {
      problems.add(at(path, "group"), `must be "" for kind Service (found ${quote(ref.group)})`);
    }
  });
  forEachRecord(spec.rules, "spec.rules", (rule, rulePath) => {
    const prefixOnly =
      Array.isArray(rule.matches) &&
      rule.matches.length > 0 &&
      rule.matches.every((m) => record(record(m).path).type === "PathPrefix");
    checkFilters(rule.filters, at(rulePath, "filters"), problems, { http, prefixOnly });
    const filterTypes = Array.isArray(rule.filters) ? rule.filters.map((f) => record(f).type) : [];
    if (filterTypes.includes("RequestRedirect") && filterTypes.includes("URLRewrite")) {
      problems.add(at(rulePath, "filters"), "may not hold both RequestRedirect and URLRewrite");
    }
    if (
      filterTypes.includes("RequestRedirect") &&
      Array.isArray(rule.backendRefs) &&
      rule.backendRefs.length
    ) {
      problems.add(at(rulePath, "backendRefs"), "must be empty when the rule redirects (RequestRedirect)");
    }
    forEachRecord(rule.backendRefs, at(rulePath, "backendRefs"), (backend, path) => {
      if (typeof backend.weight === "number" && backend.weight < 0) {
        problems.add(at(path, "weight"), "must be 0 or more");
      }
      if ((backend.kind ?? "Service") === "Service" && backend.port === undefined) {
        problems.add(at(path, "port"), "is required for a Service backend");
      }
      checkFilters(backend.filters, at(path, "filters"), problems, { http, prefixOnly });
    });
    forEachRecord(rule.matches, at(rulePath, "matches"), (match, path) => {
      checkRegexes(match.headers, at(path, "headers"), problems);
      if (http) {
        checkRegexes(match.queryParams, at(path, "queryParams"), problems);
        const p = record(match.path);
        if (p.type === "RegularExpression") checkRegex(p.value, at(at(path, "path"), "value"), problems);
        else if (typeof p.value === "string" && !p.value.startsWith("/")) {
          problems.add(at(at(path, "path"), "value"), `must start with "/" (found ${quote(p.value)})`);
        }
      } else {
        const m = record(match.method);
        if (match.method !== undefined && m.service === undefined && m.method === undefined) {
          problems.add(at(path, "method"), "needs service or method (or both)");
        }
        if (m.type === "RegularExpression") {
          checkRegex(m.service, at(at(path, "method"), "service"), problems);
          checkRegex(m.method, at(at(path, "method"), "method"), problems);
        }
      }
    });
  });
}

function checkFilters(
  value: unknown,
  path: string,
  problems: Problems,
  opts: { http: boolean; prefixOnly: boolean },
): void {
  const seen = new Map<string, string>();
  forEachRecord(value, path, (filter, filterPath) => {
    const type = typeof filter.type === "string" ? filter.type : "";
    const field = FILTER_FIELDS[type];
    if (!field) return; // the schema's enum reports unknown types
    if (filter[field] === undefined) problems.add(at(filterPath, field), `is required for type ${type}`);
    for (const other of FILTER_FIELD_NAMES) {
      if (other !== field && filter[other] !== undefined) {
        problems.add(at(filterPath, other), `must not be set for type ${type}`);
      }
    }
    // Only RequestMirror (and extensions) may repeat: two header modifiers would race.
    if (type !== "RequestMirror" && type !== "ExtensionRef") {
      const first = seen.get(type);
      if (first) problems.add(filterPath, `repeats filter type ${type} (first at ${first})`);
      else seen.set(type, filterPath);
    }
    const pathMod = record(record(filter[field]).path);
    if (pathMod.type === "ReplacePrefixMatch" && !opts.prefixOnly) {
      problems.add(
        at(at(filterPath, field), "path"),
        "ReplacePrefixMatch needs every match of the rule to be a PathPrefix path match",
      );
    }
    if (pathMod.type === "ReplaceFullPath" && pathMod.replaceFullPath === undefined) {
      problems.add(
        at(at(at(filterPath, field), "path"), "replaceFullPath"),
        "is required for ReplaceFullPath",
      );
    }
    if (pathMod.type === "ReplacePrefixMatch" && pathMod.replacePrefixMatch === undefined) {
      problems.add(
        at(at(at(filterPath, field), "path"), "replacePrefixMatch"),
        "is required for ReplacePrefixMatch",
      );
    }
    if (!opts.http && (type === "RequestRedirect" || type === "URLRewrite")) {
      problems.add(at(filterPath, "type"), `${type} is not a GRPCRoute filter`);
    }
  });
}

function checkRegexes(list: unknown, path: string, problems: Problems): void {
  forEachRecord(list, path, (item, itemPath) => {
    if (item.type === "RegularExpression") checkRegex(item.value, at(itemPath, "value"), problems);
  });
}

function checkRegex(value: unknown, path: string, problems: Problems): void {
  if (typeof value !== "string") return;
  const problem = regex(value);
  if (problem) problems.add(path, problem);
}
