// Istio's Gateway (networking.istio.io: ingress servers for the pods its selector matches) and
// the Secrets such a gateway serves certificates from. Istio's rules (pkg/config/validation's
// ValidateGateway and validateServerTLS), plus what Ambient's gateway cannot serve yet, refused
// here with the reason rather than served weaker than written: a MUTUAL or ISTIO_MUTUAL server
// would otherwise accept clients without certificates, and a TCP server would be dropped.

import {
  at,
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

const SERVED_PROTOCOLS = ["HTTP", "HTTP2", "GRPC", "HTTPS", "TLS"];
const TLS_MODES = ["SIMPLE", "PASSTHROUGH"];
// A host is `[namespace/]dnsName`, the namespace `*`, `.` or a name; the dns name `*`, `*.suffix` or exact.
const HOST_NAME =
  /^(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*)$/;
const NAMESPACE = /^(\*|\.|~|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/;

export function checkIstioGateway(obj: Json, problems: Problems): void {
  const spec = record(obj.spec);
  if (spec.selector !== undefined) {
    if (!isRecord(spec.selector)) problems.add("spec.selector", "must be a mapping of label keys to values");
    else
      for (const [key, value] of Object.entries(spec.selector)) {
        const path = at("spec.selector", key);
        const bad = labelKey(key) ?? (typeof value === "string" ? labelValue(value) : "must be a string");
        if (bad) problems.add(path, bad);
      }
  }
  if (!present(spec.servers)) {
    problems.add("spec.servers", "must list at least one server (a port, its protocol and hosts)");
  }
  const portNames = new Map<string, string>();
  const protocolByPort = new Map<number, string>();
  forEachRecord(spec.servers, "spec.servers", (server, path) => {
    const port = record(server.port);
    const portPath = at(path, "port");
    if (!isPortNumber(port.number))
      problems.add(at(portPath, "number"), "must be an integer from 1 to 65535");
    const protocol = typeof port.protocol === "string" ? port.protocol.toUpperCase() : "";
    if (!protocol) problems.add(at(portPath, "protocol"), "is required (HTTP, HTTPS, HTTP2, GRPC or TLS)");
    else if (!SERVED_PROTOCOLS.includes(protocol))
      problems.add(
        at(portPath, "protocol"),
        `${quote(port.protocol)} is not served by Ambient's ingress gateway (use ${SERVED_PROTOCOLS.join(", ")})`,
      );
    if (typeof port.name === "string") {
      const first = portNames.get(port.name);
      if (first) problems.add(at(portPath, "name"), `duplicates the port name at ${first}`);
      else portNames.set(port.name, portPath);
    }
    if (isPortNumber(port.number) && protocol) {
      // Envoy has one listener per port: HTTP and TLS servers cannot share it.
      const other = protocolByPort.get(port.number);
      const plain = (p: string) => !["HTTPS", "TLS"].includes(p);
      if (other !== undefined && plain(other) !== plain(protocol))
        problems.add(
          at(portPath, "protocol"),
          `port ${port.number} is already served as ${other}; plaintext and TLS servers cannot share a port`,
        );
      else protocolByPort.set(port.number, protocol);
    }
    if (!present(server.hosts)) problems.add(at(path, "hosts"), 'must list at least one host ("*" for any)');
    for (const host of stringsAt(server.hosts, at(path, "hosts")))
      checkServerHost(host.value, host.path, problems);
    checkServerTls(server.tls, protocol, at(path, "tls"), problems);
  });
}

function checkServerHost(host: string, path: string, problems: Problems): void {
  const slash = host.indexOf("/");
  const ns = slash === -1 ? undefined : host.slice(0, slash);
  const name = slash === -1 ? host : host.slice(slash + 1);
  if (ns !== undefined && !NAMESPACE.test(ns))
    problems.add(path, `${quote(host)}: ${quote(ns)} is not a namespace, "*" or "."`);
  if (!HOST_NAME.test(name))
    problems.add(
      path,
      `${quote(host)}: ${quote(name)} is not a host name ("*", "*.example.com" or "example.com")`,
    );
}

function checkServerTls(value: unknown, protocol: string, path: string, problems: Problems): void {
  const secure = protocol === "HTTPS" || protocol === "TLS";
  if (value === undefined || value === null) {
    if (secure)
      problems.add(
        path,
        `is required for a ${protocol} server (mode SIMPLE with credentialName, or PASSTHROUGH)`,
      );
    return;
  }
  if (!isRecord(value)) {
    problems.add(path, "must be a mapping");
    return;
  }
  if (value.httpsRedirect !== undefined && typeof value.httpsRedirect !== "boolean")
    problems.add(at(path, "httpsRedirect"), "must be true or false");
  if (!secure) {
    // On a plaintext server only httpsRedirect means anything; Istio ignores the rest.
    return;
  }
  const mode = value.mode ?? "SIMPLE";
  if (typeof mode !== "string" || !TLS_MODES.includes(mode)) {
    problems.add(
      at(path, "mode"),
      `${quote(mode)} is not served by Ambient's ingress gateway (use SIMPLE or PASSTHROUGH; client certificates are not checked, so MUTUAL is refused rather than served as SIMPLE)`,
    );
    return;
  }
  for (const field of ["serverCertificate", "privateKey", "caCertificates"]) {
    if (value[field] !== undefined)
      problems.add(
        at(path, field),
        "files in the gateway pod are not supported; use credentialName (a kubernetes.io/tls Secret)",
      );
  }
  if (mode === "SIMPLE") {
    if (typeof value.credentialName !== "string" || value.credentialName === "")
      problems.add(
        at(path, "credentialName"),
        "is required with mode SIMPLE (a kubernetes.io/tls Secret in the gateway's namespace)",
      );
  } else if (protocol === "HTTPS") {
    problems.add(at(path, "mode"), "PASSTHROUGH needs protocol TLS (an HTTPS server terminates TLS)");
  }
}

/** A Secret: string values; a kubernetes.io/tls Secret carries tls.crt and tls.key. */
export function checkSecret(obj: Json, problems: Problems): void {
  for (const field of ["data", "stringData"]) {
    const value = obj[field];
    if (value === undefined || value === null) continue;
    if (!isRecord(value)) {
      problems.add(field, "must be a mapping of keys to strings");
      continue;
    }
    for (const [key, v] of Object.entries(value)) {
      if (typeof v !== "string") problems.add(at(field, key), "must be a string");
      else if (field === "data" && !/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(v))
        problems.add(at(field, key), "is not base64 (data holds base64; use stringData for plain text)");
    }
  }
  if (obj.type === "kubernetes.io/tls") {
    const has = (k: string) => record(obj.data)[k] !== undefined || record(obj.stringData)[k] !== undefined;
    for (const key of ["tls.crt", "tls.key"])
      if (!has(key)) problems.add(at("data", key), "is required in a kubernetes.io/tls Secret");
  }
}
