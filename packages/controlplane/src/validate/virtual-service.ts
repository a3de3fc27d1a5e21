// Istio's semantic rules for VirtualService: hosts, one action per HTTP route, sane weights,
// compilable regular expressions and parseable durations. The waypoint trusts these once they
// pass, so a bad regex or timeout is caught here, with its path, instead of at request time.

import {
  at,
  atPath,
  forEachRecord,
  goDuration,
  isRecord,
  type Json,
  type Problems,
  present,
  record,
  regex,
  stringsAt,
} from "@ambient/kube";

const STRING_MATCH_FIELDS = ["uri", "scheme", "method", "authority"] as const;
const STRING_MATCH_MAPS = ["headers", "queryParams", "withoutHeaders"] as const;

export function checkVirtualService(obj: Json, problems: Problems): void {
  const spec = record(obj.spec);
  const gateways = stringsAt(spec.gateways, "spec.gateways").map((g) => g.value);
  const appliesToMesh = gateways.length === 0 || gateways.includes("mesh");

  if (!present(spec.hosts)) problems.add("spec.hosts", "must list at least one host");
  for (const host of stringsAt(spec.hosts, "spec.hosts")) {
    if (host.value === "") problems.add(host.path, "must not be empty");
    else if (host.value === "*" && appliesToMesh) {
      problems.add(host.path, 'the wildcard host "*" is not allowed for virtual services bound to the mesh');
    }
  }

  if (!present(spec.http) && !present(spec.tcp) && !present(spec.tls)) {
    problems.add("spec", "must set at least one of http, tcp or tls routes");
  }

  forEachRecord(spec.http, "spec.http", (route, path) => checkHttpRoute(route, path, problems));
  forEachRecord(spec.tcp, "spec.tcp", (route, path) =>
    checkWeights(route.route, at(path, "route"), problems),
  );
  forEachRecord(spec.tls, "spec.tls", (route, path) =>
    checkWeights(route.route, at(path, "route"), problems),
  );
}

function checkHttpRoute(route: Json, path: string, problems: Problems): void {
  const hasRoute = present(route.route);
  const hasRedirect = isRecord(route.redirect);
  const hasDirect = isRecord(route.directResponse);
  if (!hasRoute && !hasRedirect && !hasDirect && !isRecord(route.delegate)) {
    problems.add(path, "must set one of route, redirect or directResponse");
  }
  if (hasRoute && hasRedirect) problems.add(at(path, "redirect"), "cannot be combined with route");
  if (hasDirect && (hasRoute || hasRedirect)) {
    problems.add(at(path, "directResponse"), "cannot be combined with route or redirect");
  }
  checkWeights(route.route, at(path, "route"), problems);

  forEachRecord(route.match, at(path, "match"), (match, matchPath) => {
    for (const field of STRING_MATCH_FIELDS) {
      checkStringMatch(match[field], at(matchPath, field), problems);
    }
    for (const field of STRING_MATCH_MAPS) {
      for (const [name, sm] of Object.entries(record(match[field]))) {
        checkStringMatch(sm, at(at(matchPath, field), name), problems);
      }
    }
  });

  const rewrite = record(record(route.rewrite).uriRegexRewrite);
  if (rewrite.match !== undefined) {
    const problem = regex(rewrite.match);
    if (problem) problems.add(atPath(path, "rewrite.uriRegexRewrite.match"), problem);
  }

  duration(route.timeout, at(path, "timeout"), problems);
  const retries = record(route.retries);
  duration(retries.perTryTimeout, atPath(path, "retries.perTryTimeout"), problems);
  if (typeof retries.attempts === "number" && retries.attempts < 0) {
    problems.add(atPath(path, "retries.attempts"), "must not be negative");
  }

  const fault = record(route.fault);
  const delay = record(fault.delay);
  duration(delay.fixedDelay, atPath(path, "fault.delay.fixedDelay"), problems);
  percentage(delay.percentage, atPath(path, "fault.delay.percentage.value"), problems);
  percentage(record(fault.abort).percentage, atPath(path, "fault.abort.percentage.value"), problems);
  percentage(route.mirrorPercentage, atPath(path, "mirrorPercentage.value"), problems);
  forEachRecord(route.mirrors, at(path, "mirrors"), (mirror, mirrorPath) =>
    percentage(mirror.percentage, atPath(mirrorPath, "percentage.value"), problems),
  );
  duration(record(route.corsPolicy).maxAge, atPath(path, "corsPolicy.maxAge"), problems);
}

/** Weights are `w / sum(w)`: negatives are meaningless and an all-zero split sends nothing. */
function checkWeights(destinations: unknown, path: string, problems: Problems): void {
  if (!Array.isArray(destinations)) return;
  let total = 0;
  forEachRecord(destinations, path, (dest, destPath) => {
    const weight = dest.weight;
    if (typeof weight !== "number") return;
    if (weight < 0) problems.add(at(destPath, "weight"), "must not be negative");
    else total += weight;
  });
  if (destinations.length > 1 && total === 0) {
    problems.add(
      path,
      "with more than one destination, at least one weight must be positive (weights split traffic as w/sum(w))",
    );
  }
}

function checkStringMatch(value: unknown, path: string, problems: Problems): void {
  if (!isRecord(value) || value.regex === undefined) return;
  const problem = regex(value.regex);
  if (problem) problems.add(at(path, "regex"), problem);
}

export function duration(value: unknown, path: string, problems: Problems): void {
  if (value === undefined || value === null) return;
  const problem = goDuration(value);
  if (problem) problems.add(path, problem);
}

/** Istio's Percent: `{ value: 0..100 }` (a double). */
export function percentage(value: unknown, path: string, problems: Problems): void {
  if (!isRecord(value) || typeof value.value !== "number") return;
  if (value.value < 0 || value.value > 100) problems.add(path, "must be between 0 and 100");
}
