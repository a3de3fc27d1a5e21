// Istio's semantic rules for ServiceEntry and WorkloadEntry (pkg/config/validation's
// ValidateServiceEntry and validateWorkloadEntry, and the CEL rules of the upstream CRDs): DNS
// hosts, IP or CIDR addresses, unique ports, and endpoints whose form fits the resolution. Where
// Istio accepts something ztunnel cannot serve (unix socket endpoints, DYNAMIC_DNS) or only warns
// (partial wildcard hosts such as `*foo.com`), it is refused here with the reason, rather than
// dropped later in translation.

import { isCidrOrIp, isIp } from "@ambient/core";
import {
  at,
  dns1123Subdomain,
  forEachRecord,
  isPortNumber,
  isRecord,
  type Json,
  labelKey,
  labelValue,
  type Problems,
  present,
  quote,
  record,
  stringsAt,
} from "@ambient/kube";

const RESOLUTIONS = ["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"] as const;

// Istio's protocol.Parse, which ignores case; unset means "detect it".
const HTTP_PROTOCOLS = ["HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB"];
const TLS_PROTOCOLS = ["HTTPS", "TLS"];
const PROTOCOLS = [...HTTP_PROTOCOLS, ...TLS_PROTOCOLS, "TCP", "UDP", "MONGO", "MYSQL", "REDIS"];

// Istio's DNS-1123 label (pkg/config/labels) admits upper case, unlike Kubernetes' (formats.ts):
// hosts compare case-insensitively, and port names such as "HTTP" are accepted upstream.
const DNS_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const MAX_LABEL_LENGTH = 63;
const MAX_NAME_LENGTH = 255;
const UNIX_PREFIX = "unix://";
const PORT_NAME_RULE = `must be a DNS-1123 label: letters, digits and '-', starting and ending with a letter or digit, at most ${MAX_LABEL_LENGTH} characters`;

export function checkServiceEntry(obj: Json, problems: Problems): void {
  const spec = record(obj.spec);
  const resolution = spec.resolution ?? "NONE";
  const hasEndpoints = spec.endpoints !== undefined && spec.endpoints !== null;
  const endpointCount = Array.isArray(spec.endpoints) ? spec.endpoints.length : 0;

  const hosts = stringsAt(spec.hosts, "spec.hosts");
  if (!present(spec.hosts)) {
    problems.add("spec.hosts", "must list at least one host (the names clients use for this service)");
  }
  for (const host of hosts) checkHost(host.value, host.path, problems);

  for (const address of stringsAt(spec.addresses, "spec.addresses")) {
    if (!isCidrOrIp(address.value)) {
      problems.add(address.path, `${quote(address.value)} is not an IP address or CIDR block`);
    } else if (address.value.includes("/") && resolution !== "NONE" && resolution !== "STATIC") {
      problems.add(address.path, "a CIDR block is only allowed with resolution NONE or STATIC");
    }
  }

  const portNames = checkPorts(spec.ports, problems);

  if (isRecord(spec.workloadSelector)) {
    if (hasEndpoints) {
      problems.add(
        "spec.workloadSelector",
        "cannot be combined with endpoints: an entry either lists its endpoints or selects them",
      );
    }
    checkSelectorLabels(spec.workloadSelector.labels, "spec.workloadSelector.labels", problems);
  }

  if (resolution === "DYNAMIC_DNS") {
    problems.add(
      "spec.resolution",
      "DYNAMIC_DNS is not supported by Ambient: use DNS or DNS_ROUND_ROBIN, naming each host",
    );
    return;
  }
  if (typeof resolution !== "string" || !(RESOLUTIONS as readonly string[]).includes(resolution)) {
    problems.add("spec.resolution", `must be one of ${RESOLUTIONS.join(", ")}`);
    return;
  }

  if (resolution === "NONE") {
    if (endpointCount > 0) {
      problems.add(
        "spec.endpoints",
        "must be empty with resolution NONE: the address the client dialed is the endpoint",
      );
    }
  } else {
    const hostnames = resolution !== "STATIC";
    forEachRecord(spec.endpoints, "spec.endpoints", (endpoint, path) =>
      checkEndpoint(endpoint, path, { hostnames, resolution, portNames }, problems),
    );
  }

  if (resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") {
    if (endpointCount === 0) {
      for (const host of hosts) {
        if (host.value.startsWith("*") && host.value !== "*") {
          problems.add(
            host.path,
            `a wildcard host needs endpoints with resolution ${resolution}: without them each host is resolved as written`,
          );
        }
      }
    }
    if (resolution === "DNS_ROUND_ROBIN" && endpointCount > 1) {
      problems.add("spec.endpoints", "may list at most one endpoint with resolution DNS_ROUND_ROBIN");
    }
  }

  // Plain TCP carries no Host header or SNI, so a proxy cannot tell several hosts on one port
  // apart; NONE escapes the rule because it forwards to the dialed address, ignoring hosts.
  if (resolution !== "NONE" && hosts.length > 1) {
    let flagged = false;
    forEachRecord(spec.ports, "spec.ports", (port, path) => {
      if (flagged) return;
      const protocol = typeof port.protocol === "string" ? port.protocol.toUpperCase() : "";
      if (HTTP_PROTOCOLS.includes(protocol) || TLS_PROTOCOLS.includes(protocol)) return;
      flagged = true;
      problems.add(
        at(path, "protocol"),
        "with more than one host, every port must be HTTP- or TLS-based (HTTP, HTTP2, GRPC, HTTPS, TLS): plain TCP cannot tell the hosts apart",
      );
    });
  }
}

export function checkWorkloadEntry(obj: Json, problems: Problems): void {
  checkEndpoint(record(obj.spec), "spec", { hostnames: true }, problems);
}

/** Istio's ValidateWildcardDomain, without `*` alone and without partial wildcards such as `*foo.com`. */
function checkHost(host: string, path: string, problems: Problems): void {
  if (host === "") {
    problems.add(path, "must not be empty");
  } else if (host === "*") {
    problems.add(
      path,
      'the wildcard host "*" is not allowed: name the hosts, or a domain as "*.example.com"',
    );
  } else if (isIp(host)) {
    problems.add(path, `${quote(host)} is an IP address: hosts are DNS names (put IPs in addresses)`);
  } else if (host.startsWith("*.")) {
    const problem = dnsName(host.slice(2));
    if (problem) problems.add(path, `${quote(host)} ${problem}`);
  } else if (host.includes("*")) {
    problems.add(path, 'a wildcard must be the whole first label, as in "*.example.com"');
  } else {
    const problem = dnsName(host);
    if (problem) problems.add(path, `${quote(host)} ${problem}`);
  }
}

/**
 * Istio's ValidateFQDN: DNS-1123 labels, an optional trailing dot, and a last label that is not
 * all digits (so that an IPv4 address is never taken for a name).
 */
function dnsName(value: string): string | undefined {
  if (value.length === 0) return "is not a DNS name (it is empty)";
  if (value.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters (a DNS name)`;
  const labels = value.endsWith(".") ? value.slice(0, -1).split(".") : value.split(".");
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) {
    return "is not a DNS name: its last label is all digits";
  }
  for (const label of labels) {
    if (!isDnsLabel(label)) {
      return `is not a DNS name: label ${quote(label)} must be letters, digits and '-', starting and ending with a letter or digit, at most ${MAX_LABEL_LENGTH} characters`;
    }
  }
  return undefined;
}

function isDnsLabel(value: string): boolean {
  return value.length <= MAX_LABEL_LENGTH && DNS_LABEL.test(value);
}

/** Port names and numbers are unique, numbers and targets 1–65535; returns the declared names. */
function checkPorts(ports: unknown, problems: Problems): Set<string> {
  const names = new Map<string, string>();
  const numbers = new Map<number, string>();
  forEachRecord(ports, "spec.ports", (port, path) => {
    const name = port.name;
    if (typeof name !== "string" || name === "") {
      problems.add(at(path, "name"), "is required (endpoints map their ports by this name)");
    } else {
      if (!isDnsLabel(name)) problems.add(at(path, "name"), `${quote(name)} ${PORT_NAME_RULE}`);
      const first = names.get(name);
      if (first) problems.add(at(path, "name"), `duplicates the port name at ${first}`);
      else names.set(name, path);
    }

    if (!isPortNumber(port.number)) {
      problems.add(at(path, "number"), "must be an integer from 1 to 65535");
    } else {
      const first = numbers.get(port.number);
      if (first) problems.add(at(path, "number"), `duplicates the port number at ${first}`);
      else numbers.set(port.number, path);
    }

    // The CRD's CEL rule refuses 0 as well: leave targetPort out to use the port number.
    if (port.targetPort !== undefined && !isPortNumber(port.targetPort)) {
      problems.add(at(path, "targetPort"), "must be an integer from 1 to 65535");
    }

    if (port.protocol !== undefined && port.protocol !== "") {
      const known = typeof port.protocol === "string" && PROTOCOLS.includes(port.protocol.toUpperCase());
      if (!known) {
        problems.add(
          at(path, "protocol"),
          `must be one of ${PROTOCOLS.join(", ")} (or left out to detect it)`,
        );
      }
    }
  });
  return new Set(names.keys());
}

interface EndpointRules {
  /** Whether `address` may be a DNS name (DNS resolutions and WorkloadEntries) or must be an IP. */
  hostnames: boolean;
  resolution?: string;
  /** The entry's port names, which endpoint `ports` keys must be; undefined for a WorkloadEntry. */
  portNames?: Set<string>;
}

/** A WorkloadEntry's spec, or one inline endpoint of a ServiceEntry (one proto message upstream). */
function checkEndpoint(endpoint: Json, path: string, rules: EndpointRules, problems: Problems): void {
  const addressPath = at(path, "address");
  const address = endpoint.address;
  if (typeof address !== "string" || address === "") {
    problems.add(
      addressPath,
      rules.hostnames ? "is required (an IP address or a DNS name)" : "is required (an IP address)",
    );
  } else if (address.startsWith(UNIX_PREFIX)) {
    problems.add(
      addressPath,
      "unix domain socket endpoints are not supported by Ambient: ztunnel reaches endpoints over TCP, give an IP address",
    );
  } else if (!isIp(address)) {
    if (!rules.hostnames) {
      problems.add(
        addressPath,
        `${quote(address)} is not an IP address (resolution ${rules.resolution} needs IPs; use resolution DNS for hostnames)`,
      );
    } else if (dnsName(address)) {
      problems.add(addressPath, `${quote(address)} is neither an IP address nor a DNS name`);
    }
  }

  for (const [name, number] of Object.entries(record(endpoint.ports))) {
    const portPath = at(at(path, "ports"), name);
    if (rules.portNames && !rules.portNames.has(name)) {
      const declared = [...rules.portNames].join(", ");
      problems.add(
        portPath,
        `names no port of this ServiceEntry (${declared ? `its ports are ${declared}` : "it declares no ports"})`,
      );
    } else if (!isDnsLabel(name)) {
      problems.add(portPath, `the port name ${quote(name)} ${PORT_NAME_RULE}`);
    }
    if (!isPortNumber(number)) problems.add(portPath, "must be an integer from 1 to 65535");
  }

  for (const [key, value] of Object.entries(record(endpoint.labels))) {
    checkLabel(key, value, at(at(path, "labels"), key), problems);
  }

  const serviceAccount = endpoint.serviceAccount;
  if (typeof serviceAccount === "string" && serviceAccount !== "") {
    // Kubernetes names ServiceAccounts with DNS-1123 subdomains; the name lands in the SPIFFE ID.
    const problem = dns1123Subdomain(serviceAccount);
    if (problem) problems.add(at(path, "serviceAccount"), `${quote(serviceAccount)} ${problem}`);
  }
}

/** Istio's workload selectors match labels exactly: a wildcard would silently match nothing. */
function checkSelectorLabels(labels: unknown, path: string, problems: Problems): void {
  for (const [key, value] of Object.entries(record(labels))) {
    const labelPath = at(path, key);
    if (key.includes("*") || (typeof value === "string" && value.includes("*"))) {
      problems.add(labelPath, "wildcards are not supported in a workload selector");
    } else {
      checkLabel(key, value, labelPath, problems);
    }
  }
}

/** Kubernetes' label rules, as Istio's labels.Instance.Validate applies them (non-strings: the schema). */
function checkLabel(key: string, value: unknown, path: string, problems: Problems): void {
  const keyProblem = labelKey(key);
  if (keyProblem) problems.add(path, `label key ${quote(key)} ${keyProblem}`);
  const valueProblem = typeof value === "string" ? labelValue(value) : undefined;
  if (valueProblem) problems.add(path, `label value ${quote(value)} ${valueProblem}`);
}
