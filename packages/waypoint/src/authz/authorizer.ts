// The waypoint's L7 authorization: the AuthorizationPolicies that target it, compiled once, then
// decided per request in Istio's order (CUSTOM, then AUDIT is noted, DENY, ALLOW). A denial is
// Envoy RBAC's 403 "RBAC: access denied"; the decision says which policy rule made it and why.

import type { L7Request } from "../model/request.js";
import { type CompileContext, compileRule } from "./compile.js";
import type { Predicate } from "./generators.js";
import type { PathNormalization } from "./path.js";
import {
  type AuthorizationAction,
  type AuthorizationPolicyObject,
  isDryRun,
  policyNamespace,
  rbacPolicyName,
} from "./policy.js";
import { type RequestAuth, requestFacts } from "./request-facts.js";

/** The body Envoy's RBAC filter answers a denied request with. */
export const RBAC_ACCESS_DENIED = "RBAC: access denied";

export interface AuthorizerOptions {
  /** meshConfig.pathNormalization; Istio's default is BASE. */
  pathNormalization?: PathNormalization;
  /** Proxies in front of the mesh whose X-Forwarded-For entries are trusted (Istio default 0). */
  numTrustedProxies?: number;
  /** Decide opaque TCP connections: HTTP-only fields as istiod's TCP filter treats them. */
  forTcp?: boolean;
}

export interface AuthzDecision {
  allowed: boolean;
  /** 403 for a policy denial; 400 when the path cannot be normalized (Envoy rejects it first). */
  status?: 400 | 403;
  /** The Envoy RBAC policy name that decided, `ns[<ns>]-policy[<name>]-rule[<i>]`. */
  policy?: string;
  reason: string;
  /** Matched AUDIT rules: the request should be audited; never changes the decision. */
  audits: string[];
  /** Rules of `istio.io/dry-run` policies that matched: evaluated, not enforced. */
  dryRun: string[];
}

export interface Authorizer {
  authorize(req: L7Request, auth?: RequestAuth): AuthzDecision;
  /** Rules skipped or values ignored while compiling, one line each, as istiod's authz log. */
  readonly warnings: readonly string[];
}

interface CompiledRule {
  name: string;
  match: Predicate;
}

interface Bucket {
  /** Rules of enforced policies, sorted by name: Envoy's RBAC engine walks its policy map in order. */
  rules: CompiledRule[];
  /** Enforced policies with this action, counted even when none of their rules survived. */
  policies: number;
}

const ACTIONS: readonly AuthorizationAction[] = ["ALLOW", "DENY", "AUDIT", "CUSTOM"];

function firstMatch(rules: readonly CompiledRule[], facts: Parameters<Predicate>[0]): string | undefined {
  return rules.find((r) => r.match(facts))?.name;
}

export function compileAuthorization(
  policies: readonly AuthorizationPolicyObject[],
  options: AuthorizerOptions = {},
): Authorizer {
  const factsOptions = {
    pathNormalization: options.pathNormalization ?? "BASE",
    numTrustedProxies: options.numTrustedProxies ?? 0,
  };
  const warnings: string[] = [];
  const buckets = new Map<AuthorizationAction, Bucket>(ACTIONS.map((a) => [a, { rules: [], policies: 0 }]));
  const dryRunRules: CompiledRule[] = [];
  const custom: Array<{ name: string; provider: string }> = [];

  for (const policy of policies) {
    const ns = policyNamespace(policy);
    const name = policy.metadata.name;
    const action: AuthorizationAction = policy.spec?.action ?? "ALLOW";
    if (!ACTIONS.includes(action)) {
      warnings.push(`ns[${ns}]-policy[${name}]: skipped: unknown action ${JSON.stringify(action)}`);
      continue;
    }
    if (action === "CUSTOM") {
      custom.push({ name: `ns[${ns}]-policy[${name}]`, provider: policy.spec?.provider?.name ?? "" });
      continue;
    }
    const dryRun = isDryRun(policy);
    const bucket = buckets.get(action)!;
    if (!dryRun) bucket.policies++;
    const target = dryRun ? dryRunRules : bucket.rules;
    // No rules (`spec: {}`) compiles to Envoy's never-matching policy: an ALLOW of it denies all.
    (policy.spec?.rules ?? []).forEach((rule, i) => {
      const ruleName = rbacPolicyName(ns, name, i);
      const ctx: CompileContext = {
        namespace: ns,
        strict: action === "ALLOW",
        warn: (m) => warnings.push(`${ruleName}: ${m}`),
        ...(options.forTcp ? { forTcp: true } : {}),
      };
      try {
        if (rule === null || rule === undefined) throw new Error("rule is null");
        target.push({ name: ruleName, match: compileRule(rule, ctx) });
      } catch (err) {
        warnings.push(`${ruleName}: skipped: ${(err as Error).message}`);
      }
    });
  }
  for (const bucket of buckets.values())
    bucket.rules.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const allow = buckets.get("ALLOW")!;
  const deny = buckets.get("DENY")!;
  const audit = buckets.get("AUDIT")!;

  return {
    warnings,
    authorize(req: L7Request, auth?: RequestAuth): AuthzDecision {
      if (custom.length > 0) {
        // istiod fails closed with a deny-all RBAC filter when it cannot build the ext_authz
        // filter a CUSTOM policy names; this waypoint has no ext_authz client, so it always can't.
        const first = custom[0]!;
        return {
          allowed: false,
          status: 403,
          policy: first.name,
          reason: `CUSTOM (ext_authz) policies are not supported by this waypoint: ${first.name} names provider ${JSON.stringify(first.provider)}; denying all requests (fail closed)`,
          audits: [],
          dryRun: [],
        };
      }
      const facts = requestFacts(req, auth, factsOptions);
      if (!facts) {
        return {
          allowed: false,
          status: 400,
          reason: `path ${JSON.stringify(req.path)} failed ${factsOptions.pathNormalization} normalization`,
          audits: [],
          dryRun: [],
        };
      }
      const audits = audit.rules.filter((r) => r.match(facts)).map((r) => r.name);
      const dryRun = dryRunRules.filter((r) => r.match(facts)).map((r) => r.name);
      const denied = firstMatch(deny.rules, facts);
      if (denied) {
        return {
          allowed: false,
          status: 403,
          policy: denied,
          reason: `matched DENY rule ${denied}`,
          audits,
          dryRun,
        };
      }
      if (allow.policies === 0) {
        return { allowed: true, reason: "no ALLOW policy applies: allowed by default", audits, dryRun };
      }
      const allowed = firstMatch(allow.rules, facts);
      if (allowed)
        return { allowed: true, policy: allowed, reason: `matched ALLOW rule ${allowed}`, audits, dryRun };
      return {
        allowed: false,
        status: 403,
        reason: `no ALLOW rule matched (${allow.policies} ALLOW ${allow.policies === 1 ? "policy" : "policies"} apply)`,
        audits,
        dryRun,
      };
    },
  };
}
