// One AuthorizationPolicy rule compiled into a predicate over RequestFacts, field by field as istiod
// builds the Envoy RBAC policy: values OR within a field, fields AND, one `from`, one `to` and every
// `when`. A value istiod cannot translate makes an ALLOW rule match nothing but only widens a DENY.

import { type Cidr, cidrContains, parseCidr } from "./ip-match.js";
import { compilePathTemplate, isPathTemplate } from "./path.js";
import type { AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from "./policy.js";
import { claimValue, headerValue, type RequestFacts } from "./request-facts.js";
import {
  escapeRegExp,
  globToRegExpSource,
  headerMatcher,
  listHeaderMatcher,
  type StringPredicate,
  stringMatcher,
} from "./string-match.js";

export type Predicate = (facts: RequestFacts) => boolean;

/** A value that cannot be translated; what happens next depends on the policy action. */
export class InvalidValueError extends Error {
  readonly code = "AMB_AUTHZ_INVALID_VALUE";
}

/** A rule istiod skips whatever the action (an unknown `when` key, a malformed rule). */
export class InvalidRuleError extends Error {
  readonly code = "AMB_AUTHZ_INVALID_RULE";
}

export interface CompileContext {
  /** The policy's namespace: `serviceAccounts` entries without one are in it. */
  namespace: string;
  /** ALLOW: an invalid value drops the rule. DENY, AUDIT, CUSTOM: the value is ignored (fail closed). */
  strict: boolean;
  /** Receives one line per ignored value. */
  warn: (message: string) => void;
}

type Generator = (value: string) => Predicate;

// ---- per-attribute generators (istiod's pilot/pkg/security/authz/model/generator.go) ----

const ipIn = (pick: (f: RequestFacts) => RequestFacts["sourceIp"]): Generator => {
  return (value) => {
    const cidr: Cidr | undefined = parseCidr(value);
    if (!cidr) throw new InvalidValueError(`invalid IP or CIDR ${JSON.stringify(value)}`);
    return (f) => {
      const ip = pick(f);
      return ip !== undefined && cidrContains(cidr, ip);
    };
  };
};

const destinationPort: Generator = (value) => {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidValueError(`invalid port ${JSON.stringify(value)}`);
  }
  const port = Number(value);
  return (f) => f.req.destination.port === port;
};

const principal: Generator = (value) => {
  const match = stringMatcher(value, "spiffe://");
  return (f) => match(f.peer);
};

/** istiod matches a namespace against the peer identity with the regex `.*\/ns/<value>/.*`. */
const namespace: Generator = (value) => {
  const re = new RegExp(`^.*/ns/${globToRegExpSource(value)}/.*$`);
  return (f) => f.peer !== undefined && re.test(f.peer);
};

/** `<name>` (in the policy's namespace) or `<namespace>/<name>`; exact only, as istiod validates. */
const serviceAccount =
  (policyNamespace: string): Generator =>
  (value) => {
    const parts = value.split("/");
    if (value.includes("*") || parts.length > 2 || parts.some((p) => p.length === 0)) {
      throw new InvalidValueError(`invalid service account ${JSON.stringify(value)}`);
    }
    const [ns, sa] = parts.length === 2 ? [parts[0]!, parts[1]!] : [policyNamespace, parts[0]!];
    const re = new RegExp(`^spiffe://.+/ns/${escapeRegExp(ns)}/(.+/|)sa/${escapeRegExp(sa)}(/.+)?$`);
    return (f) => f.peer !== undefined && re.test(f.peer);
  };

/**
 * `<iss>/<sub>` split at the last "/" and matched as two JWT claims, which is how istiod lets
 * "*" stand for a whole issuer or subject (`*\/admin`, `https://idp/*`).
 */
const requestPrincipal: Generator = (value) => {
  const slash = value.lastIndexOf("/");
  const found = slash >= 0;
  const iss = found ? value.slice(0, slash) : value;
  const sub = found ? value.slice(slash + 1) : "";
  const any = stringMatcher("*");
  const exact =
    (s: string): StringPredicate =>
    (v) =>
      v === s;
  const prefix =
    (s: string): StringPredicate =>
    (v) =>
      v !== undefined && v.startsWith(s);
  const suffix =
    (s: string): StringPredicate =>
    (v) =>
      v !== undefined && v.endsWith(s);
  let matchIss: StringPredicate;
  let matchSub: StringPredicate;
  if (value === "*") {
    matchIss = any;
    matchSub = any;
  } else if (value.startsWith("*")) {
    matchIss = found ? (iss === "*" ? any : suffix(iss.slice(1))) : any;
    matchSub = found ? exact(sub) : suffix(value.slice(1));
  } else if (value.endsWith("*")) {
    matchIss = found ? exact(iss) : prefix(value.slice(0, -1));
    matchSub = found ? (sub === "*" ? any : prefix(sub.slice(0, -1))) : any;
  } else {
    matchIss = exact(iss);
    matchSub = exact(sub);
  }
  return (f) => matchIss(f.issuer) && matchSub(f.subject);
};

/** A JWT claim holding a string, or a list of which any string element may match. */
const claim =
  (path: readonly string[]): Generator =>
  (value) => {
    const match = stringMatcher(value);
    return (f) => {
      const v = claimValue(f, path);
      if (typeof v === "string") return match(v);
      return Array.isArray(v) && v.some((e) => typeof e === "string" && match(e));
    };
  };

const header =
  (name: string, list: boolean): Generator =>
  (value) => {
    const match = list ? listHeaderMatcher(value) : headerMatcher(value);
    return (f) => match(headerValue(f, name));
  };

const host: Generator = (value) => {
  // Case-insensitive, compared with the whole :authority, port included, as istiod's HostMatcher.
  const match = headerMatcher(value, true);
  return (f) => match(f.req.authority);
};

const method: Generator = (value) => {
  const match = headerMatcher(value);
  return (f) => match(f.req.method);
};

const path: Generator = (value) => {
  if (isPathTemplate(value)) {
    let re: RegExp;
    try {
      re = compilePathTemplate(value);
    } catch (err) {
      throw new InvalidValueError((err as Error).message);
    }
    return (f) => re.test(f.path);
  }
  const match = stringMatcher(value);
  return (f) => match(f.path);
};

/** The waypoint's inner connection carries no TLS, so no SNI: Envoy's matcher sees an empty name. */
const sni: Generator = (value) => {
  const match = stringMatcher(value);
  return () => match(undefined);
};

/**
 * `experimental.envoy.filters.<filter>[<key>]` reads Envoy dynamic metadata, which this waypoint does
 * not have: like an Envoy metadata matcher on a missing key, a value never matches (so `notValues`
 * always do).
 */
const envoyFilterMetadata =
  (key: string): Generator =>
  () => {
    if (!/^experimental\.envoy\.filters\.[^[\]]+\[[^[\]]+\]$/.test(key)) {
      throw new InvalidValueError(
        `invalid key ${JSON.stringify(key)}: expecting experimental.envoy.filters.a.b[c]`,
      );
    }
    return () => false;
  };

/** `[a][b]` → ["a", "b"], as istiod's extractNameInNestedBrackets. */
function nestedBrackets(text: string): string[] | undefined {
  if (!/^(\[[^[\]]+\])+$/.test(text)) return undefined;
  return [...text.matchAll(/\[([^[\]]+)\]/g)].map((g) => g[1]!);
}

/** A key istiod accepts but cannot translate: each value fails as istiod's generator does. */
const untranslatable =
  (message: string): Generator =>
  () => {
    throw new InvalidValueError(message);
  };

function conditionGenerator(key: string, ctx: CompileContext): Generator {
  const bracketed = (prefix: string, gen: (name: string) => Generator): Generator => {
    const inner = key.slice(prefix.length).match(/^\[([^[\]]+)\]$/);
    return inner
      ? gen(inner[1]!)
      : untranslatable(`bad key ${JSON.stringify(key)}: expecting ${prefix}[name]`);
  };
  if (key.startsWith("request.headers")) return bracketed("request.headers", (n) => header(n, false));
  if (key.startsWith("request.experimental.inline.headers")) {
    return bracketed("request.experimental.inline.headers", (n) => header(n, true));
  }
  if (key.startsWith("request.auth.claims")) {
    const claims = nestedBrackets(key.slice("request.auth.claims".length));
    return claims
      ? claim(claims)
      : untranslatable(`bad key ${JSON.stringify(key)}: expecting request.auth.claims[name]`);
  }
  if (key.startsWith("experimental.envoy.filters.")) return envoyFilterMetadata(key);
  switch (key) {
    case "source.ip":
      return ipIn((f) => f.sourceIp);
    case "remote.ip":
      return ipIn((f) => f.remoteIp);
    case "source.namespace":
      return namespace;
    case "source.serviceAccount":
      return serviceAccount(ctx.namespace);
    case "source.principal":
      return principal;
    case "request.auth.principal":
      return requestPrincipal;
    case "request.auth.audiences":
      return claim(["aud"]);
    case "request.auth.presenter":
      return claim(["azp"]);
    case "destination.ip":
      return ipIn((f) => f.destinationIp);
    case "destination.port":
      return destinationPort;
    case "connection.sni":
      return sni;
    default:
      throw new InvalidRuleError(`unknown attribute ${JSON.stringify(key)}`);
  }
}

// ---- fields and rules ----

function compileValues(
  gen: Generator,
  field: string,
  values: readonly string[],
  ctx: CompileContext,
): Predicate[] {
  const out: Predicate[] = [];
  for (const value of values) {
    try {
      out.push(gen(value));
    } catch (err) {
      if (ctx.strict || !(err instanceof InvalidValueError)) throw err;
      ctx.warn(`${field}: ignored ${err.message}`);
    }
  }
  return out;
}

/** `values` OR'ed, then none of `notValues`; undefined when the field sets nothing. */
function compileField(
  gen: Generator,
  field: string,
  values: readonly string[] | null | undefined,
  notValues: readonly string[] | null | undefined,
  ctx: CompileContext,
): Predicate | undefined {
  const pos = compileValues(gen, field, values ?? [], ctx);
  const neg = compileValues(gen, `not ${field}`, notValues ?? [], ctx);
  if (pos.length === 0 && neg.length === 0) return undefined;
  return (f) => (pos.length === 0 || pos.some((p) => p(f))) && !neg.some((p) => p(f));
}

const all =
  (preds: readonly Predicate[]): Predicate =>
  (f) =>
    preds.every((p) => p(f));

function compileSource(s: AuthzSource, ctx: CompileContext): Predicate {
  const fields = [
    compileField(principal, "principals", s.principals, s.notPrincipals, ctx),
    compileField(requestPrincipal, "requestPrincipals", s.requestPrincipals, s.notRequestPrincipals, ctx),
    compileField(namespace, "namespaces", s.namespaces, s.notNamespaces, ctx),
    compileField(
      serviceAccount(ctx.namespace),
      "serviceAccounts",
      s.serviceAccounts,
      s.notServiceAccounts,
      ctx,
    ),
    compileField(
      ipIn((f) => f.sourceIp),
      "ipBlocks",
      s.ipBlocks,
      s.notIpBlocks,
      ctx,
    ),
    compileField(
      ipIn((f) => f.remoteIp),
      "remoteIpBlocks",
      s.remoteIpBlocks,
      s.notRemoteIpBlocks,
      ctx,
    ),
  ];
  return all(fields.filter((p): p is Predicate => p !== undefined));
}

function compileOperation(o: AuthzOperation, ctx: CompileContext): Predicate {
  const fields = [
    compileField(host, "hosts", o.hosts, o.notHosts, ctx),
    compileField(method, "methods", o.methods, o.notMethods, ctx),
    compileField(path, "paths", o.paths, o.notPaths, ctx),
    compileField(destinationPort, "ports", o.ports, o.notPorts, ctx),
  ];
  return all(fields.filter((p): p is Predicate => p !== undefined));
}

function compileCondition(c: AuthzCondition, ctx: CompileContext): Predicate | undefined {
  if (!c || typeof c.key !== "string") throw new InvalidRuleError("condition without a key");
  return compileField(conditionGenerator(c.key, ctx), c.key, c.values, c.notValues, ctx);
}

/**
 * A rule as a predicate. Throws InvalidRuleError for a rule istiod would skip, and (for ALLOW)
 * InvalidValueError for a value it could not translate, which also skips the rule.
 */
export function compileRule(rule: AuthzRule, ctx: CompileContext): Predicate {
  if (rule === null || typeof rule !== "object") throw new InvalidRuleError("rule is not an object");
  const from = (rule.from ?? []).map((f) => (f?.source ? compileSource(f.source, ctx) : () => true));
  const to = (rule.to ?? []).map((t) => (t?.operation ? compileOperation(t.operation, ctx) : () => true));
  const when = (rule.when ?? [])
    .map((c) => compileCondition(c, ctx))
    .filter((p): p is Predicate => p !== undefined);
  return (f) =>
    (from.length === 0 || from.some((p) => p(f))) &&
    (to.length === 0 || to.some((p) => p(f))) &&
    when.every((p) => p(f));
}
