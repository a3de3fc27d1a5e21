// Istio host names in VirtualServices: short names resolved in the rule's namespace, FQDNs, and
// `*.suffix` wildcards; which pattern matches a request's host, and which of several matching
// patterns is the most specific (exact beats wildcard, a longer wildcard beats a shorter one).

export type HostResolver = (shortName: string, namespace: string) => string;

export const DEFAULT_CLUSTER_DOMAIN = "cluster.local";

export const defaultHostResolver: HostResolver = (shortName, namespace) =>
  `${shortName}.${namespace}.svc.${DEFAULT_CLUSTER_DOMAIN}`;

/**
 * Istio's ResolveShortnameToFQDN: "*" and anything containing a dot are taken as written (so
 * "reviews.prod" is not expanded); a bare name is a Kubernetes service in the rule's namespace.
 */
export function resolveHost(host: string, namespace: string, resolver: HostResolver): string {
  const lower = host.toLowerCase();
  if (lower === "*" || lower.includes(".")) return lower;
  return resolver(lower, namespace).toLowerCase();
}

/** Whether VirtualService host `pattern` covers `host` (both lowercase FQDNs). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  if (pattern.startsWith("*")) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** Larger is more specific: any exact name, then wildcards by the length of their suffix. */
export function hostSpecificity(pattern: string): number {
  if (!pattern.startsWith("*")) return Number.MAX_SAFE_INTEGER;
  return pattern.length - 1;
}

/** "reviews:9080" → "reviews", "[::1]:80" → "[::1]". */
export function stripPort(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return end === -1 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(":");
  return colon === -1 ? authority : authority.slice(0, colon);
}

/** The namespace of a Kubernetes service FQDN (`<svc>.<ns>.svc.<domain>`), if it is one. */
export function namespaceOfHost(host: string): string | undefined {
  const parts = host.split(".");
  return parts.length >= 4 && parts[2] === "svc" ? parts[1] : undefined;
}

export function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":") || host.startsWith("[");
}
