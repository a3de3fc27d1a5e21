// One generator per policy attribute, each turning a value into a predicate over RequestFacts, as
// istiod's authz generators turn it into an Envoy RBAC matcher. Each keeps istiod's reading of the
// value: which match dialect, against what, and which values it cannot translate.

import { type Cidr, cidrContains, parseCidr } from "@ambient/core";
import { compilePathTemplate, isPathTemplate } from "./path.js";
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

export const INVALID_VALUE = "AMB_AUTHZ_INVALID_VALUE";
export const INVALID_RULE = "AMB_AUTHZ_INVALID_RULE";

/** A value that cannot be translated; what happens next depends on the policy action. */
export class InvalidValueError extends Error {
  readonly code = INVALID_VALUE;
}

/** A rule istiod skips whatever the action (an unknown `when` key, a malformed rule). */
export class InvalidRuleError extends Error {
  readonly code = INVALID_RULE;
}

export type Generator = (value: string) => Predicate;

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

export const sourceIp = ipIn((f) => f.sourceIp);
export const remoteIp = ipIn((f) => f.remoteIp);
const destinationIp = ipIn((f) => f.destinationIp);

export const destinationPort: Generator = (value) => {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidValueError(`invalid port ${JSON.stringify(value)}`);
  }
  const port = Number(value);
  return (f) => f.req.destination.port === port;
};

export const principal: Generator = (value) => {
  const match = stringMatcher(value, "spiffe://");
  return (f) => match(f.peer);
};

/** istiod matches a namespace against the peer identity with the regex `.*\/ns/<value>/.*`. */
export const namespace: Generator = (value) => {
  const re = new RegExp(`^.*/ns/${globToRegExpSource(value)}/.*$`);
  return (f) => f.peer !== undefined && re.test(f.peer);
};

/** `<name>` (in the policy's namespace) or `<namespace>/<name>`; exact only, as istiod validates. */
export const serviceAccount =
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
export const requestPrincipal: Generator = (value) => {
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
      v?.startsWith(s) === true;
  const suffix =
    (s: string): StringPredicate =>
    (v) =>
      v?.endsWith(s) === true;
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

export const host: Generator = (value) => {
  // Case-insensitive, compared with the whole :authority, port included, as istiod's HostMatcher.
  const match = headerMatcher(value, true);
  return (f) => match(f.req.authority);
};

export const method: Generator = (value) => {
  const match = headerMatcher(value);
  return (f) => match(f.req.method);
};

export const path: Generator = (value) => {
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

/** The generator for a `when` key; throws InvalidRuleError for a key istiod does not know. */
export function conditionGenerator(key: string, policyNamespace: string): Generator {
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
      return sourceIp;
    case "remote.ip":
      return remoteIp;
    case "source.namespace":
      return namespace;
    case "source.serviceAccount":
      return serviceAccount(policyNamespace);
    case "source.principal":
      return principal;
    case "request.auth.principal":
      return requestPrincipal;
    case "request.auth.audiences":
      return claim(["aud"]);
    case "request.auth.presenter":
      return claim(["azp"]);
    case "destination.ip":
      return destinationIp;
    case "destination.port":
      return destinationPort;
    case "connection.sni":
      return sni;
    default:
      throw new InvalidRuleError(`unknown attribute ${JSON.stringify(key)}`);
  }
}
