// Which AuthorizationPolicies and RequestAuthentications a waypoint applies to a request, as
// Istio's ambient does: those whose targetRef(s) name this waypoint's Gateway apply to all its
// traffic; those naming a Service apply to requests for that service. (Selector policies belong to
// ztunnel.) Compiled per destination service and cached until the config changes.

import type { L7Resource, Logger } from "@ambient/core";
import { JwksCache, JwtAuthenticator, type RequestAuthenticationObject } from "./authn/index.js";
import { type AuthorizationPolicyObject, type Authorizer, compileAuthorization } from "./authz/index.js";
import type { L7Request } from "./model/request.js";
import type { AuthnResult, AuthzResult } from "./proxy/stages.js";

interface TargetRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

function targetRefs(r: L7Resource): TargetRef[] {
  const spec = (r.spec ?? {}) as { targetRef?: TargetRef; targetRefs?: TargetRef[] };
  return [...(spec.targetRef ? [spec.targetRef] : []), ...(spec.targetRefs ?? [])];
}

function asObject(r: L7Resource) {
  return {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { name: r.name, namespace: r.namespace, annotations: r.annotations },
    spec: r.spec,
  };
}

export class PolicyStage {
  private gatewayPolicies: L7Resource[] = [];
  private servicePolicies = new Map<string, L7Resource[]>();
  private gatewayAuthn: L7Resource[] = [];
  private serviceAuthn = new Map<string, L7Resource[]>();
  private readonly authorizers = new Map<string, Authorizer>();
  private readonly tcpAuthorizers = new Map<string, Authorizer>();
  private readonly authenticators = new Map<string, JwtAuthenticator | undefined>();
  // Shared across recompiles so a config push does not refetch every JWKS.
  private readonly jwks = new JwksCache();

  constructor(
    private readonly self: { name: string; namespace: string },
    private readonly logger: Logger,
  ) {}

  /**
   * `appliesToSelf`: an ingress gateway's extra rule for what applies to all its traffic (the
   * selector policies of its own pod, ingress/stages.ts); waypoints have none.
   */
  update(policies: L7Resource[], authns: L7Resource[], appliesToSelf?: (r: L7Resource) => boolean): void {
    const split = (rs: L7Resource[]) => {
      const gateway: L7Resource[] = [];
      const byService = new Map<string, L7Resource[]>();
      for (const r of rs) {
        if (appliesToSelf?.(r)) gateway.push(r);
        for (const ref of targetRefs(r)) {
          const ns = ref.namespace ?? r.namespace;
          if (ref.kind === "Gateway" && ref.name === this.self.name && ns === this.self.namespace)
            gateway.push(r);
          if (ref.kind === "Service" && ref.name) {
            const key = `${ref.name}.${ns}.svc.cluster.local`;
            byService.set(key, [...(byService.get(key) ?? []), r]);
          }
        }
      }
      return { gateway, byService };
    };
    const p = split(policies);
    this.gatewayPolicies = p.gateway;
    this.servicePolicies = p.byService;
    const a = split(authns);
    this.gatewayAuthn = a.gateway;
    this.serviceAuthn = a.byService;
    this.authorizers.clear();
    this.tcpAuthorizers.clear();
    this.authenticators.clear();
  }

  authenticate = async (req: L7Request): Promise<AuthnResult> => {
    const auth = this.authenticatorFor(req.destination.host);
    if (!auth) return { ok: true };
    const r = await auth.authenticate(req);
    if (!r.ok) return { ok: false, status: r.status, reason: r.reason };
    return {
      ok: true,
      ...(r.principal ? { principal: r.principal } : {}),
      ...(r.claims ? { claims: r.claims as Record<string, unknown> } : {}),
      removeHeaders: r.removeHeaders,
      addHeaders: r.addHeaders,
    };
  };

  authorize = (req: L7Request, auth: AuthnResult): AuthzResult => {
    const authorizer = this.authorizerFor(req.destination.host);
    if (!authorizer) return { allowed: true, reason: "no policy" };
    const d = authorizer.authorize(req, {
      ...(auth.principal ? { requestPrincipal: auth.principal } : {}),
      ...(auth.claims ? { claims: auth.claims } : {}),
    });
    for (const a of d.audits)
      this.logger.info({ policy: a, path: req.path, principal: req.source.principal }, "AUDIT");
    return { allowed: d.allowed, ...(d.policy ? { policy: d.policy } : {}), reason: d.reason };
  };

  /** Opaque TCP: the same policies, with HTTP-only fields read as istiod's TCP filter reads them. */
  authorizeTcp = (req: L7Request): AuthzResult => {
    const authorizer = this.authorizerFor(req.destination.host, true);
    if (!authorizer) return { allowed: true, reason: "no policy" };
    const d = authorizer.authorize(req);
    for (const a of d.audits) this.logger.info({ policy: a, principal: req.source.principal }, "AUDIT");
    return { allowed: d.allowed, ...(d.policy ? { policy: d.policy } : {}), reason: d.reason };
  };

  private authorizerFor(host: string, forTcp = false): Authorizer | undefined {
    const cache = forTcp ? this.tcpAuthorizers : this.authorizers;
    if (cache.has(host)) return cache.get(host);
    const policies = [...this.gatewayPolicies, ...(this.servicePolicies.get(host) ?? [])];
    const compiled = policies.length
      ? compileAuthorization(policies.map(asObject) as AuthorizationPolicyObject[], { forTcp })
      : undefined;
    // The HTTP compile reports what was skipped; the TCP one skips the same values.
    if (!forTcp) for (const w of compiled?.warnings ?? []) this.logger.warn({ host }, w);
    if (compiled) cache.set(host, compiled);
    return compiled;
  }

  private authenticatorFor(host: string): JwtAuthenticator | undefined {
    if (this.authenticators.has(host)) return this.authenticators.get(host);
    const rs = [...this.gatewayAuthn, ...(this.serviceAuthn.get(host) ?? [])];
    const auth = rs.length
      ? new JwtAuthenticator(rs.map(asObject) as RequestAuthenticationObject[], { jwksCache: this.jwks })
      : undefined;
    this.authenticators.set(host, auth);
    return auth;
  }
}
