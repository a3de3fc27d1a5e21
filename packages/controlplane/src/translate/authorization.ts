// AuthorizationPolicy → istio.security.Authorization for ztunnel's L4 enforcement, following
// Istio's ambient translation (pilot/.../ambient/authorization.go): each Istio rule becomes one
// Rule whose clauses (ANDed) are its `from`, its `to` and each `when`; the matches inside a
// clause are ORed. Policies with targetRefs belong to waypoints and are not translated here.

import {
  type AddressMatch,
  type Authorization,
  type AuthorizationAction,
  type Clause,
  emptyMatch,
  type Match,
  parseCidr,
  type Rule,
  type StringMatch,
} from "@ambient/core";
import {
  type AuthorizationPolicy,
  type AuthorizationRule,
  type Condition,
  namespaceOf,
  type Operation,
  type Source,
} from "@ambient/kube";
import { annotationsOf, type TranslateContext } from "./context.js";

const DRY_RUN_ANNOTATION = "istio.io/dry-run";

const HTTP_SOURCE_FIELDS = [
  "requestPrincipals",
  "notRequestPrincipals",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
] as const;
const HTTP_OPERATION_FIELDS = ["hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"] as const;
// Istio's l4WhenAttributes plus source.serviceAccount (Istio 1.24+). remote.ip is the client
// address from X-Forwarded-For or PROXY protocol, which ztunnel never sees: it is HTTP-only.
const L4_WHEN_KEYS = new Set([
  "source.ip",
  "source.namespace",
  "source.principal",
  "source.serviceAccount",
  "destination.ip",
  "destination.port",
]);

/** True when a policy is for a waypoint (targetRef/targetRefs) rather than for ztunnel. */
export function isWaypointPolicy(policy: AuthorizationPolicy): boolean {
  const spec = policy.spec ?? {};
  return spec.targetRef != null || (spec.targetRefs?.length ?? 0) > 0;
}

/**
 * The L4 Authorization for `policy`, or undefined when ztunnel cannot enforce it (CUSTOM and
 * AUDIT actions, waypoint policies). Warns about HTTP attributes the way Istio's status does.
 */
export function translateAuthorizationPolicy(
  policy: AuthorizationPolicy,
  ctx: TranslateContext,
): Authorization | undefined {
  if (isWaypointPolicy(policy)) return undefined;
  const spec = policy.spec ?? {};
  const namespace = namespaceOf(policy);
  const declared = spec.action ?? "ALLOW";
  if (declared !== "ALLOW" && declared !== "DENY") {
    ctx.warn(policy, `ztunnel does not support the ${declared} action; the policy is not enforced at L4`);
    return undefined;
  }
  const action: AuthorizationAction = declared;

  const rules: Rule[] = [];
  const httpAttributes = new Set<string>();
  for (const rule of spec.rules ?? []) {
    if (rule == null) continue; // validation refuses null rules; never let one match everything
    const translated = translateRule(rule, action, namespace, ctx, httpAttributes);
    if (translated) rules.push(translated);
  }
  if (httpAttributes.size > 0) {
    const found = [...httpAttributes].sort().join(", ");
    ctx.warn(
      policy,
      `ztunnel does not support HTTP attributes (found: ${found}); use a waypoint to enforce HTTP rules. ` +
        (action === "ALLOW"
          ? "Within an ALLOW policy, rules matching HTTP attributes are omitted: more restrictive than requested."
          : "The DENY policy is enforced without its HTTP parts: more restrictive than requested."),
    );
  }
  for (const principal of principalsOf(spec.rules ?? [])) {
    if (principal.startsWith("spiffe://")) {
      ctx.warn(
        policy,
        `principal ${JSON.stringify(principal)} starts with spiffe://; Istio principals omit the scheme, so it never matches`,
      );
    }
  }

  return {
    name: policy.metadata.name,
    namespace,
    scope:
      spec.selector != null
        ? "WORKLOAD_SELECTOR"
        : namespace === ctx.options.rootNamespace
          ? "GLOBAL"
          : "NAMESPACE",
    action,
    rules,
    dryRun: annotationsOf(policy)[DRY_RUN_ANNOTATION] === "true",
  };
}

/**
 * One Istio rule. A clause that would match every connection is left out (ANDing "true" changes
 * nothing), which is how a DENY rule sheds its HTTP parts. Istio instead sends an empty Match,
 * which ztunnel skips as never matching; leaving the clause out gives the behaviour Istio's own
 * status message promises: "enforced without the HTTP rules, more restrictive than requested".
 * So a DENY rule with only HTTP conditions denies everything its other fields match (everything,
 * when it has none). An ALLOW rule that uses any HTTP attribute can never be proven at L4 and is
 * dropped whole; a policy whose rules all drop keeps `rules: []` and allows nothing.
 */
function translateRule(
  rule: AuthorizationRule,
  action: AuthorizationAction,
  namespace: string,
  ctx: TranslateContext,
  httpAttributes: Set<string>,
): Rule | undefined {
  const http = new Set<string>();
  const clauses: Clause[] = [];
  const addClause = (matches: Match[]) => {
    // ALLOW fails closed: an empty alternative (only possible from unvalidated input) never matches.
    if (action === "ALLOW") matches = matches.filter((m) => !isEmptyMatch(m));
    // DENY: an alternative (or an empty list, i.e. no constraint) matches everything.
    else if (matches.length === 0 || matches.some(isEmptyMatch)) return;
    clauses.push({ matches });
  };

  if (rule.from) addClause(rule.from.map((f) => sourceMatch(f?.source ?? {}, namespace, ctx, http)));
  if (rule.to) addClause(rule.to.map((t) => operationMatch(t?.operation ?? {}, http)));
  for (const condition of rule.when ?? []) {
    if (condition == null) continue;
    if (L4_WHEN_KEYS.has(condition.key)) addClause([conditionMatch(condition, namespace, ctx)]);
    else http.add(condition.key);
  }

  for (const attr of http) httpAttributes.add(attr);
  if (action === "ALLOW" && (http.size > 0 || clauses.some((c) => c.matches.length === 0))) return undefined;
  return { clauses };
}

function sourceMatch(source: Source, namespace: string, ctx: TranslateContext, http: Set<string>): Match {
  for (const field of HTTP_SOURCE_FIELDS) if ((source[field]?.length ?? 0) > 0) http.add(field);
  const m = emptyMatch();
  m.principals = [
    ...stringMatches(source.principals),
    ...serviceAccountMatches(source.serviceAccounts, namespace, ctx),
  ];
  m.notPrincipals = [
    ...stringMatches(source.notPrincipals),
    ...serviceAccountMatches(source.notServiceAccounts, namespace, ctx),
  ];
  m.namespaces = stringMatches(source.namespaces);
  m.notNamespaces = stringMatches(source.notNamespaces);
  m.sourceIps = addressMatches(source.ipBlocks);
  m.notSourceIps = addressMatches(source.notIpBlocks);
  return m;
}

function operationMatch(operation: Operation, http: Set<string>): Match {
  for (const field of HTTP_OPERATION_FIELDS) if ((operation[field]?.length ?? 0) > 0) http.add(field);
  const m = emptyMatch();
  m.destinationPorts = ports(operation.ports);
  m.notDestinationPorts = ports(operation.notPorts);
  return m;
}

function conditionMatch(condition: Condition, namespace: string, ctx: TranslateContext): Match {
  const m = emptyMatch();
  const { values, notValues } = condition;
  switch (condition.key) {
    case "source.ip":
      m.sourceIps = addressMatches(values);
      m.notSourceIps = addressMatches(notValues);
      break;
    case "source.namespace":
      m.namespaces = stringMatches(values);
      m.notNamespaces = stringMatches(notValues);
      break;
    case "source.principal":
      m.principals = stringMatches(values);
      m.notPrincipals = stringMatches(notValues);
      break;
    case "source.serviceAccount":
      m.principals = serviceAccountMatches(values, namespace, ctx);
      m.notPrincipals = serviceAccountMatches(notValues, namespace, ctx);
      break;
    case "destination.ip":
      m.destinationIps = addressMatches(values);
      m.notDestinationIps = addressMatches(notValues);
      break;
    case "destination.port":
      m.destinationPorts = ports(values);
      m.notDestinationPorts = ports(notValues);
      break;
  }
  return m;
}

/** Istio's wildcard syntax: `*` any non-empty value, `prefix*`, `*suffix`, else exact. */
function stringMatch(value: string): StringMatch {
  if (value === "*") return { presence: {} };
  if (value.startsWith("*")) return { suffix: value.slice(1) };
  if (value.endsWith("*")) return { prefix: value.slice(0, -1) };
  return { exact: value };
}

function stringMatches(values: readonly string[] | undefined): StringMatch[] {
  return (values ?? []).map(stringMatch);
}

/**
 * `ns/sa` (or a bare `sa` in the policy's namespace) as the principal ztunnel compares against:
 * the SPIFFE identity without its scheme, `<trust domain>/ns/<ns>/sa/<sa>`. Principals written in
 * policies are kept as written for the same reason: ztunnel strips `spiffe://` from the peer.
 */
function serviceAccountMatches(
  values: readonly string[] | undefined,
  namespace: string,
  ctx: TranslateContext,
): StringMatch[] {
  return (values ?? []).map((value) => {
    const [ns, sa] = value.includes("/") ? value.split("/", 2) : [namespace, value];
    return { exact: `${ctx.options.trustDomain}/ns/${ns}/sa/${sa}` };
  });
}

function addressMatches(values: readonly string[] | undefined): AddressMatch[] {
  const out: AddressMatch[] = [];
  for (const value of values ?? []) {
    const cidr = parseCidr(value);
    if (cidr) out.push(cidr);
  }
  return out;
}

function ports(values: readonly string[] | undefined): number[] {
  const out: number[] = [];
  for (const value of values ?? []) {
    if (!/^[0-9]{1,5}$/.test(value)) continue;
    const port = Number(value);
    if (port <= 65535) out.push(port);
  }
  return out;
}

function isEmptyMatch(m: Match): boolean {
  return (Object.keys(m) as (keyof Match)[]).every((k) => m[k].length === 0);
}

function principalsOf(rules: readonly AuthorizationRule[]): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    for (const from of rule?.from ?? []) {
      out.push(...(from?.source?.principals ?? []), ...(from?.source?.notPrincipals ?? []));
    }
    for (const cond of rule?.when ?? []) {
      if (cond?.key === "source.principal") out.push(...(cond.values ?? []), ...(cond.notValues ?? []));
    }
  }
  return out;
}
