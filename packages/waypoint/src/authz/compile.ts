// One AuthorizationPolicy rule compiled into a predicate over RequestFacts, field by field as istiod
// builds the Envoy RBAC policy: values OR within a field, fields AND, one `from`, one `to` and every
// `when`. A value istiod cannot translate makes an ALLOW rule match nothing but only widens a DENY.
// For opaque TCP, HTTP-only fields are handled as istiod's TCP RBAC filter does: an ALLOW rule using
// one matches nothing, a DENY rule drops it and so denies more (fail closed).

import {
  conditionGenerator,
  destinationPort,
  type Generator,
  host,
  INVALID_VALUE,
  InvalidRuleError,
  method,
  namespace,
  type Predicate,
  path,
  principal,
  remoteIp,
  requestPrincipal,
  serviceAccount,
  sourceIp,
} from "./generators.js";
import type { AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from "./policy.js";

export interface CompileContext {
  /** The policy's namespace: `serviceAccounts` entries without one are in it. */
  namespace: string;
  /** ALLOW: an invalid value drops the rule. DENY, AUDIT, CUSTOM: the value is ignored (fail closed). */
  strict: boolean;
  /** Receives one line per ignored value. */
  warn: (message: string) => void;
  /** Compiling for opaque TCP: no method, path, host, header or JWT exists to match. */
  forTcp?: boolean;
}

const NEVER: Predicate = () => false;

/** `request.*` and Envoy filter metadata exist only on HTTP requests. */
function isHttpOnlyKey(key: string): boolean {
  return key.startsWith("request.") || key.startsWith("experimental.envoy.filters.");
}

/** A field only HTTP has: compiled as usual, or for TCP "never" (ALLOW) or dropped (the rest). */
function httpField(
  gen: Generator,
  field: string,
  values: readonly string[] | null | undefined,
  notValues: readonly string[] | null | undefined,
  ctx: CompileContext,
): Predicate | undefined {
  if (!ctx.forTcp) return compileField(gen, field, values, notValues, ctx);
  if ((values?.length ?? 0) + (notValues?.length ?? 0) === 0) return undefined;
  return ctx.strict ? NEVER : undefined;
}

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
      // Matched on `code`, not instanceof, per the repo's error convention.
      if (ctx.strict || (err as { code?: unknown }).code !== INVALID_VALUE) throw err;
      ctx.warn(`${field}: ignored ${(err as Error).message}`);
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
  const sa = serviceAccount(ctx.namespace);
  const fields = [
    compileField(principal, "principals", s.principals, s.notPrincipals, ctx),
    httpField(requestPrincipal, "requestPrincipals", s.requestPrincipals, s.notRequestPrincipals, ctx),
    compileField(namespace, "namespaces", s.namespaces, s.notNamespaces, ctx),
    compileField(sa, "serviceAccounts", s.serviceAccounts, s.notServiceAccounts, ctx),
    compileField(sourceIp, "ipBlocks", s.ipBlocks, s.notIpBlocks, ctx),
    compileField(remoteIp, "remoteIpBlocks", s.remoteIpBlocks, s.notRemoteIpBlocks, ctx),
  ];
  return all(fields.filter((p): p is Predicate => p !== undefined));
}

function compileOperation(o: AuthzOperation, ctx: CompileContext): Predicate {
  const fields = [
    httpField(host, "hosts", o.hosts, o.notHosts, ctx),
    httpField(method, "methods", o.methods, o.notMethods, ctx),
    httpField(path, "paths", o.paths, o.notPaths, ctx),
    compileField(destinationPort, "ports", o.ports, o.notPorts, ctx),
  ];
  return all(fields.filter((p): p is Predicate => p !== undefined));
}

function compileCondition(c: AuthzCondition, ctx: CompileContext): Predicate | undefined {
  if (!c || typeof c.key !== "string") throw new InvalidRuleError("condition without a key");
  if (ctx.forTcp && isHttpOnlyKey(c.key)) return ctx.strict ? NEVER : undefined;
  return compileField(conditionGenerator(c.key, ctx.namespace), c.key, c.values, c.notValues, ctx);
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
