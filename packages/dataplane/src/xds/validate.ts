// Checks a decoded Address or Authorization before ztunnel acts on it. The codec guarantees the
// shape; these are the meaning rules a proxy relies on (a workload has a uid and usable addresses,
// a name matches what removals will use, ports fit in 16 bits). Every problem is listed at once.

import {
  type Address,
  type AddressMatch,
  AmbientError,
  type Authorization,
  ErrorCode,
  type GatewayAddress,
  type Port,
  type Service,
  SpiffeId,
  type Workload,
} from "@ambient/core";
import { DEFAULT_SERVICE_ACCOUNT, DEFAULT_TRUST_DOMAIN, serviceKey } from "../state/workload.js";

const SCOPES = new Set(["GLOBAL", "NAMESPACE", "WORKLOAD_SELECTOR"]);
const ACTIONS = new Set(["ALLOW", "DENY"]);
const MAX_PORT = 65_535;

/** Collects "<field path>: <problem>" lines for one resource. */
class Problems {
  readonly list: string[] = [];
  add(path: string, problem: string): void {
    this.list.push(`${path} ${problem}`);
  }
  throwIfAny(kind: string, name: string): void {
    if (this.list.length === 0) return;
    throw new AmbientError(ErrorCode.XDS_DECODE, `invalid ${kind}: ${this.list.join("; ")}`, {
      details: { resource: name, problems: this.list },
    });
  }
}

/**
 * Validates an Address named `name` and returns it with Istio's defaults filled in (empty trust
 * domain and service account). Throws XDS_DECODE naming every invalid field.
 */
export function validateAddress(name: string, address: Address): Address {
  const problems = new Problems();
  if (address.workload) {
    const workload = withWorkloadDefaults(address.workload);
    checkWorkload(name, workload, problems);
    problems.throwIfAny("istio.workload.Workload", name);
    return { workload };
  }
  checkService(name, address.service, problems);
  problems.throwIfAny("istio.workload.Service", name);
  return address;
}

export function validateAuthorization(name: string, policy: Authorization): Authorization {
  const problems = new Problems();
  if (!policy.name) problems.add("name", "is empty");
  if (!policy.namespace) problems.add("namespace", "is empty");
  if (policy.name && policy.namespace && name !== `${policy.namespace}/${policy.name}`) {
    problems.add("name", `and namespace give "${policy.namespace}/${policy.name}", not the resource name`);
  }
  if (!SCOPES.has(policy.scope))
    problems.add("scope", `is ${JSON.stringify(policy.scope)}; expected ${[...SCOPES].join(", ")}`);
  if (!ACTIONS.has(policy.action))
    problems.add("action", `is ${JSON.stringify(policy.action)}; expected ALLOW or DENY`);
  for (const [r, rule] of policy.rules.entries()) {
    for (const [c, clause] of rule.clauses.entries()) {
      for (const [m, match] of clause.matches.entries()) {
        const at = `rules[${r}].clauses[${c}].matches[${m}]`;
        for (const field of ["sourceIps", "notSourceIps", "destinationIps", "notDestinationIps"] as const) {
          for (const [i, cidr] of match[field].entries()) checkCidr(`${at}.${field}[${i}]`, cidr, problems);
        }
        for (const field of ["destinationPorts", "notDestinationPorts"] as const) {
          for (const [i, port] of match[field].entries()) {
            if (port > MAX_PORT)
              problems.add(`${at}.${field}[${i}]`, `is ${port}; ports are at most ${MAX_PORT}`);
          }
        }
      }
    }
  }
  problems.throwIfAny("istio.security.Authorization", name);
  return policy;
}

function withWorkloadDefaults(w: Workload): Workload {
  if (w.trustDomain && w.serviceAccount) return w;
  return {
    ...w,
    trustDomain: w.trustDomain || DEFAULT_TRUST_DOMAIN,
    serviceAccount: w.serviceAccount || DEFAULT_SERVICE_ACCOUNT,
  };
}

function checkWorkload(name: string, w: Workload, problems: Problems): void {
  if (!w.uid) problems.add("uid", "is empty");
  else if (w.uid !== name) problems.add("uid", `is "${w.uid}", not the resource name`);
  if (!w.name) problems.add("name", "is empty");
  if (!w.namespace) problems.add("namespace", "is empty");
  for (const [i, bytes] of w.addresses.entries()) checkIpBytes(`addresses[${i}]`, bytes, problems);
  if (w.namespace) {
    try {
      SpiffeId.of({ trustDomain: w.trustDomain, namespace: w.namespace, serviceAccount: w.serviceAccount });
    } catch (err) {
      problems.add(
        "trustDomain/namespace/serviceAccount",
        `do not form a SPIFFE ID: ${(err as Error).message}`,
      );
    }
  }
  if (w.waypoint) checkGateway("waypoint", w.waypoint, problems);
  for (const [key, list] of Object.entries(w.services)) {
    const slash = key.indexOf("/");
    if (slash <= 0 || slash === key.length - 1) {
      problems.add(`services["${key}"]`, `is not "<namespace>/<hostname>"`);
    }
    checkPorts(`services["${key}"].ports`, list.ports, problems);
  }
}

function checkService(name: string, s: Service, problems: Problems): void {
  if (!s.hostname) problems.add("hostname", "is empty");
  if (!s.namespace) problems.add("namespace", "is empty");
  if (s.hostname && s.namespace && name !== serviceKey(s)) {
    problems.add("namespace/hostname", `give "${serviceKey(s)}", not the resource name`);
  }
  for (const [i, a] of s.addresses.entries()) checkIpBytes(`addresses[${i}].address`, a.address, problems);
  checkPorts("ports", s.ports, problems);
  if (s.waypoint) checkGateway("waypoint", s.waypoint, problems);
  s.loadBalancing?.routingPreference.forEach((scope, i) => {
    if (scope === "UNSPECIFIED_SCOPE")
      problems.add(`loadBalancing.routingPreference[${i}]`, "is UNSPECIFIED_SCOPE");
  });
}

function checkPorts(path: string, ports: readonly Port[], problems: Problems): void {
  ports.forEach((p, i) => {
    if (p.servicePort < 1 || p.servicePort > MAX_PORT) {
      problems.add(`${path}[${i}].servicePort`, `is ${p.servicePort}; expected 1-${MAX_PORT}`);
    }
    // 0 is meaningful: "a named port, resolved per workload".
    if (p.targetPort > MAX_PORT)
      problems.add(`${path}[${i}].targetPort`, `is ${p.targetPort}; expected 0-${MAX_PORT}`);
  });
}

function checkGateway(path: string, g: GatewayAddress, problems: Problems): void {
  if (g.hostname && g.address) problems.add(path, "has both hostname and address");
  else if (g.hostname) {
    if (!g.hostname.hostname) problems.add(`${path}.hostname.hostname`, "is empty");
  } else if (g.address) {
    checkIpBytes(`${path}.address.address`, g.address.address, problems);
  } else {
    problems.add(path, "has neither hostname nor address");
  }
  if (g.hboneMtlsPort > MAX_PORT) problems.add(`${path}.hboneMtlsPort`, `is ${g.hboneMtlsPort}`);
}

function checkIpBytes(path: string, bytes: Uint8Array, problems: Problems): void {
  if (bytes.length !== 4 && bytes.length !== 16) {
    problems.add(path, `is ${bytes.length} bytes; expected 4 (IPv4) or 16 (IPv6)`);
  }
}

function checkCidr(path: string, cidr: AddressMatch, problems: Problems): void {
  checkIpBytes(`${path}.address`, cidr.address, problems);
  const bits = cidr.address.length * 8;
  if ((bits === 32 || bits === 128) && cidr.length > bits) {
    problems.add(`${path}.length`, `is ${cidr.length}; at most ${bits} for this address`);
  }
}
