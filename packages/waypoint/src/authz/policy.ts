// The AuthorizationPolicy shape the waypoint evaluates: plain parsed YAML (security.istio.io/v1),
// already schema-validated and already selected for this waypoint (targetRefs to its Gateway or to
// a Service it serves; `selector` policies belong to ztunnel). Only the fields authz reads are typed.

export type AuthorizationAction = "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";

export interface AuthzSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

export interface AuthzOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthzCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthzRule {
  from?: Array<{ source?: AuthzSource | null }> | null;
  to?: Array<{ operation?: AuthzOperation | null }> | null;
  when?: AuthzCondition[] | null;
}

export interface AuthorizationPolicySpec {
  action?: AuthorizationAction;
  provider?: { name?: string };
  rules?: Array<AuthzRule | null> | null;
  [field: string]: unknown;
}

export interface AuthorizationPolicyObject {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: AuthorizationPolicySpec | null;
  [field: string]: unknown;
}

/** Istio's annotation that evaluates a policy without enforcing it (Envoy shadow rules). */
export const DRY_RUN_ANNOTATION = "istio.io/dry-run";

/** The Envoy RBAC policy name istiod gives a rule; it is what access logs and metrics show. */
export function rbacPolicyName(namespace: string, name: string, ruleIndex: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${ruleIndex}]`;
}

export function policyNamespace(policy: AuthorizationPolicyObject): string {
  return policy.metadata.namespace ?? "default";
}

export function isDryRun(policy: AuthorizationPolicyObject): boolean {
  // istiod reads the annotation with Go's strconv.ParseBool.
  const value = policy.metadata.annotations?.[DRY_RUN_ANNOTATION];
  return value !== undefined && ["1", "t", "T", "true", "TRUE", "True"].includes(value);
}
